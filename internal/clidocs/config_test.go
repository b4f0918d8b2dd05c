package clidocs

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

type toyConfig struct {
	Name  string `yaml:"name"`
	Kafka struct {
		Topic   string        `yaml:"topic"`
		Timeout time.Duration `yaml:"timeout"`
	} `yaml:"kafka"`
}

func toySource(c *toyConfig) *Source {
	fs := pflag.NewFlagSet("toy", pflag.ContinueOnError)
	fs.StringVar(&c.Kafka.Topic, "topic", c.Kafka.Topic, "event topic (kafka.topic; default cutover.<name>)")
	name := func(f reflect.StructField) string { return f.Tag.Get("yaml") }
	return &Source{Config: *c, KeyName: name, Flags: fs, TopLevelKeys: []string{"name"},
		YAMLOnly: map[string]string{"name": "the pipeline's name", "kafka.timeout": "how long to wait"},
		Rules:    []Rule{{Key: "kafka.topic", Doc: "not empty"}, {Key: "kafka", Doc: "whole section"}}}
}

// The configuration page lists every key with its default, its flag and
// the help that names it, and the rules under their key or section.
func TestConfigPage(t *testing.T) {
	c := toyConfig{Name: "p"}
	c.Kafka.Timeout = 90 * time.Second
	page, err := configPage(toySource(&c))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| `name` | string | `p` |  | the pipeline's name |  |",
		"| `topic` | string |  | `--topic` | event topic (default cutover.<name>) | not empty |",
		"| `timeout` | duration | `1m30s` |  | how long to wait |  |",
		"Checked for `kafka` as a whole:\n\n* whole section",
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
}

// A key neither a flag nor YAMLOnly describes, a YAMLOnly entry for no
// key, and a rule about no key are mistakes, each named.
func TestConfigPageProblems(t *testing.T) {
	c := toyConfig{}
	s := toySource(&c)
	delete(s.YAMLOnly, "kafka.timeout")
	s.YAMLOnly["kafka.gone"] = "x"
	_, err := configPage(s)
	if err == nil || !strings.Contains(err.Error(), "kafka.timeout is not described") ||
		!strings.Contains(err.Error(), "YAMLOnly describes kafka.gone") {
		t.Fatalf("err = %v", err)
	}
	s = toySource(&c)
	s.Rules = append(s.Rules, Rule{Key: "nowhere"})
	if _, err := configPage(s); err == nil || !strings.Contains(err.Error(), "nowhere") {
		t.Fatalf("err = %v", err)
	}
}
