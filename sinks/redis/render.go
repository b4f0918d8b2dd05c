package redis

import (
	"fmt"

	"github.com/cutover/cutover/pipeline"
)

// Renderer is how the sink turns DynamoDB items into Redis keys and
// values, without a connection: `cutover plan` sizes what an item
// becomes and counts the items the key template cannot map.
type Renderer struct{ o ItemOptions }

// NewRenderer checks opts (as New does) and compiles its template.
func NewRenderer(opts ItemOptions) (*Renderer, error) {
	if err := opts.compile(); err != nil {
		return nil, err
	}
	return &Renderer{o: opts}, nil
}

// Render is the Redis key and value an item's upsert event becomes.
// Errors wrap pipeline.ErrUnmappable: the sink would reject the event.
func (r *Renderer) Render(e *pipeline.Event) (string, pipeline.Value, error) {
	key, err := r.o.itemKey(e.Key)
	if err != nil {
		return "", pipeline.Value{}, err
	}
	v, err := r.o.itemValue(e.Value.Item)
	if err != nil {
		return "", pipeline.Value{}, fmt.Errorf("%w: item %s: %w", pipeline.ErrUnmappable, e.Key, err)
	}
	return key, v, nil
}
