// Package dynamoerr says what an error from DynamoDB means: to the code
// that made the call (Classify: retry it, slow down, give up on this
// item, stop) and to the person who must fix it (Explain). The DynamoDB
// source and the DynamoDB sink share it; each maps the classes to its
// own action (docs/DESIGN.md §7).
package dynamoerr
