package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// unknownKeys walks a YAML document against the type it is decoded into
// and lists every key that type has no field for, with its path and the
// keys allowed there: a typo must not silently fall back to a default,
// and the message must say where and what would have been right.
func unknownKeys(node *yaml.Node, t reflect.Type) []string {
	var problems []string
	walkKeys(node, t, "", &problems)
	return problems
}

func walkKeys(node *yaml.Node, t reflect.Type, path string, problems *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch node.Kind {
	case yaml.DocumentNode:
		for _, c := range node.Content {
			walkKeys(c, t, path, problems)
		}
	case yaml.MappingNode:
		switch t.Kind() {
		case reflect.Struct:
			fields := yamlFields(t)
			for i := 0; i+1 < len(node.Content); i += 2 {
				key, value := node.Content[i].Value, node.Content[i+1]
				ft, ok := fields[key]
				if !ok {
					names := make([]string, 0, len(fields))
					for n := range fields {
						names = append(names, n)
					}
					slices.Sort(names)
					*problems = append(*problems, fmt.Sprintf("%s: unknown key (line %d); the keys allowed in %s are: %s",
						join(path, key), node.Content[i].Line, orTop(path), strings.Join(names, ", ")))
					continue
				}
				walkKeys(value, ft, join(path, key), problems)
			}
		case reflect.Map:
			for i := 0; i+1 < len(node.Content); i += 2 {
				walkKeys(node.Content[i+1], t.Elem(), join(path, node.Content[i].Value), problems)
			}
		default:
		}
	case yaml.SequenceNode:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for i, c := range node.Content {
				walkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), problems)
			}
		}
	default: // scalars and aliases: nothing to check
	}
}

// yamlFields maps the YAML keys of a struct type to their field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if name := KeyName(f); name != "-" {
			out[name] = f.Type
		}
	}
	return out
}

// KeyName is the YAML key of a struct field, as yaml.v3 names it.
func KeyName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orTop(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}
