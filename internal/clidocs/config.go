package clidocs

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// configKey is one YAML key of the configuration.
type configKey struct {
	path, section, typ, def, flag, doc string
}

// configKeys walks the configuration: every key in declaration order,
// with its default, the flag whose help names it and that help; and the
// sections, in the same order.
func configKeys(s *Source) ([]configKey, []string, error) {
	flags := flagsByKey(s.Flags, s.TopLevelKeys)
	var keys []configKey
	var sections []string
	var walk func(t reflect.Type, v reflect.Value, prefix string)
	walk = func(t reflect.Type, v reflect.Value, prefix string) {
		sections = append(sections, prefix)
		for i := range t.NumField() {
			f := t.Field(i)
			name := s.KeyName(f)
			if !f.IsExported() || name == "-" {
				continue
			}
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			fv := v.Field(i)
			switch {
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, fv, path)
				continue
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				keys = append(keys, configKey{path: path, section: prefix, typ: "list of " + lastWord(path)})
				walk(f.Type.Elem(), reflect.New(f.Type.Elem()).Elem(), path+"[]")
				continue
			}
			keys = append(keys, configKey{path: path, section: prefix, typ: typeName(f.Type), def: formatDefault(fv)})
		}
	}
	walk(reflect.TypeOf(s.Config), reflect.ValueOf(s.Config), "")
	var problems []string
	for i, k := range keys {
		fl, hasFlag := flags[k.path]
		only, hasDoc := s.YAMLOnly[k.path]
		switch {
		case hasFlag && hasDoc:
			problems = append(problems, k.path+" has a flag (--"+fl.name+") and an entry in YAMLOnly: drop the entry")
		case hasFlag:
			keys[i].flag, keys[i].doc = "--"+fl.name, fl.doc
		case hasDoc:
			keys[i].doc = only
		default:
			problems = append(problems, k.path+" is not described: give it a flag whose help names it, or an entry in YAMLOnly")
		}
	}
	for path := range s.YAMLOnly {
		if !slices.ContainsFunc(keys, func(k configKey) bool { return k.path == path }) {
			problems = append(problems, "YAMLOnly describes "+path+", which the configuration does not have")
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, nil, errors.New(strings.Join(problems, "; "))
	}
	return keys, sections, nil
}

func lastWord(path string) string {
	return path[strings.LastIndex(path, ".")+1:]
}

type keyFlag struct{ name, doc string }

// keyRef is a flag help's mention of its YAML key: "(kafka.topic)" or
// "(kafka.topic; default cutover.<name>)".
var keyRef = regexp.MustCompile(`\(([a-z_]+(?:\.[a-z_]+)*)(?:; ([^)]*))?\)`)

// flagsByKey maps each YAML key to the flag whose help names it, and
// that help without the key.
func flagsByKey(fs *pflag.FlagSet, topLevel []string) map[string]keyFlag {
	out := map[string]keyFlag{}
	fs.VisitAll(func(f *pflag.Flag) {
		for _, m := range keyRef.FindAllStringSubmatchIndex(f.Usage, -1) {
			key := f.Usage[m[2]:m[3]]
			if !strings.Contains(key, ".") && !slices.Contains(topLevel, key) {
				continue
			}
			note := ""
			if m[4] >= 0 {
				note = " (" + f.Usage[m[4]:m[5]] + ")"
			}
			out[key] = keyFlag{name: f.Name, doc: strings.TrimSpace(f.Usage[:m[0]]) + note + f.Usage[m[1]:]}
			return
		}
	})
	return out
}

func typeName(t reflect.Type) string {
	if t == reflect.TypeFor[time.Duration]() {
		return "duration"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice:
		return "list of " + typeName(t.Elem()) + "s"
	case reflect.Map:
		return "map of " + typeName(t.Key()) + " to " + typeName(t.Elem())
	default:
		return t.Kind().String()
	}
}

// formatDefault writes a default as it would be written in the file;
// "" for none.
func formatDefault(v reflect.Value) string {
	if d, ok := v.Interface().(time.Duration); ok {
		s := d.String()
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		return "`" + s + "`"
	}
	switch v.Kind() {
	case reflect.String:
		if v.String() == "" {
			return ""
		}
	case reflect.Slice, reflect.Map:
		if v.Len() == 0 {
			return ""
		}
		parts := make([]string, v.Len())
		for i := range v.Len() {
			parts[i] = fmt.Sprint(v.Index(i).Interface())
		}
		return "`[" + strings.Join(parts, ", ") + "]`"
	default:
	}
	return "`" + fmt.Sprint(v.Interface()) + "`"
}

// configPage is the YAML reference: one table per section, each key with
// its type, default, flag, meaning and the rules that check it.
func configPage(s *Source) ([]byte, error) {
	keys, sections, err := configKeys(s)
	if err != nil {
		return nil, err
	}
	rulesOf := map[string][]string{}
	isKey := map[string]bool{}
	for _, k := range keys {
		isKey[k.path] = true
	}
	for _, r := range s.Rules {
		if !isKey[r.Key] && !slices.Contains(sections, r.Key) {
			return nil, fmt.Errorf("configRules: a rule is about %s, which is neither a key nor a section", r.Key)
		}
		rulesOf[r.Key] = append(rulesOf[r.Key], r.Doc)
	}
	var b strings.Builder
	b.WriteString(Mark)
	b.WriteString(`# Configuration reference

Every key of a pipeline's YAML file (` + "`--config`" + `), in the file's structure. A
flag sets the same value and wins over the file; ` + "`${VAR}`" + ` in the file is
replaced by the environment variable VAR. A key not listed here is an
error. How the file is used: [configuration](../configuration.md).

"Checked" lists what ` + "`cutover config validate`" + ` and every command check at
start; a configuration that fails any check is refused with exit status 2,
every problem named by its path.
`)
	for _, s := range sections {
		var rows []configKey
		for _, k := range keys {
			if k.section == s {
				rows = append(rows, k)
			}
		}
		across := rulesOf[s]
		if len(rows) == 0 && len(across) == 0 {
			continue
		}
		title := s
		if title == "" {
			title = "top level"
		}
		fmt.Fprintf(&b, "\n## %s\n\n", title)
		if len(rows) > 0 {
			b.WriteString("| key | type | default | flag | meaning | checked |\n|---|---|---|---|---|---|\n")
			for _, k := range rows {
				fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", lastWord(k.path), k.typ, cell(k.def),
					cell(codeOrEmpty(k.flag)), cell(k.doc), cell(strings.Join(rulesOf[k.path], "; ")))
			}
		}
		if len(across) > 0 {
			if len(rows) > 0 {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "Checked for `%s` as a whole:\n\n", title)
			for _, d := range across {
				fmt.Fprintf(&b, "* %s\n", d)
			}
		}
	}
	return []byte(b.String()), nil
}
