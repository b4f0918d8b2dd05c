package test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cutover/cutover/test/stack"
)

// There is no Docker or Kubernetes here, so the deployment files are
// checked against the binary instead: every command and flag they pass
// exists, the configuration they mount validates, probes and metrics use
// the endpoints cutover serves, and nothing runs as root.

// checkArgs fails t unless args is a cutover command whose flags all
// exist, and returns the command.
func checkArgs(t *testing.T, where string, args []string) string {
	t.Helper()
	if len(args) == 0 {
		t.Fatalf("%s: no command", where)
	}
	help := stack.Run(testCtx(t, time.Minute), t, args[0], "--help")
	if help.Code != 0 {
		t.Fatalf("%s: %q is not a cutover command:\n%s", where, args[0], help.Stderr)
	}
	for _, a := range args[1:] {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		flag := strings.SplitN(a, "=", 2)[0]
		if !helpHasFlag(help.Stdout, flag) {
			t.Errorf("%s: cutover %s has no flag %s", where, args[0], flag)
		}
	}
	return args[0]
}

// helpHasFlag reports whether a --help text lists flag: the whole name,
// then the flag's type, its description or the line's end. (A word
// boundary after the name took --sink for --sink-concurrency.)
func helpHasFlag(help, flag string) bool {
	return regexp.MustCompile(`(?m)^\s+(-\w, )?` + regexp.QuoteMeta(flag) + `([ \t]|$)`).MatchString(help)
}

// TestHelpHasFlagWantsTheWholeName pins the check the manifest tests rely
// on: a flag is found by its whole name only.
func TestHelpHasFlagWantsTheWholeName(t *testing.T) {
	help := "Flags:\n      --sink-concurrency int   writes in flight (default 16)\n  -h, --help   help for sink\n      --dry-run\n"
	for flag, want := range map[string]bool{
		"--sink-concurrency": true, "--help": true, "--dry-run": true,
		"--sink": false, "--sink-concurrenc": false, "--dry": false, "--he": false,
	} {
		if got := helpHasFlag(help, flag); got != want {
			t.Errorf("helpHasFlag(%s) = %v, want %v", flag, got, want)
		}
	}
}

func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	must(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, d)
	}
}

// dig walks a decoded YAML document.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, strings.TrimSpace(toString(x)))
	}
	return out
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}

// kubernetesManifests are the files of deploy/kubernetes.
func kubernetesManifests(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../deploy/kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	return files
}

func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	for _, f := range kubernetesManifests(t) {
		checkWorkloads(t, f, yamlDocs(t, f))
	}
}

// checkWorkloads checks the StatefulSets and Deployments among docs, one
// manifest or one rendering of the Helm chart (named where): every command
// and flag they pass exists; the configuration they mount validates with
// the container's environment; probes use the endpoints cutover serves, on
// the port the configuration's metrics_addr opens; pods run as non-root;
// exactly one source runs, as exactly one replica, and its checkpoints
// live on a volume claim (they are files, and a rescheduled pod resumes
// from them).
func checkWorkloads(t *testing.T, where string, docs []map[string]any) {
	t.Helper()
	configs := map[string]string{}
	for _, d := range docs {
		if d["kind"] == "ConfigMap" {
			for k, v := range dig(d, "data").(map[string]any) {
				configs[k] = toString(v)
			}
		}
	}
	sources := 0
	for _, d := range docs {
		kind := d["kind"]
		if kind != "StatefulSet" && kind != "Deployment" {
			continue
		}
		name := where + ": " + toString(dig(d, "metadata", "name"))
		pod := dig(d, "spec", "template", "spec")
		if dig(pod, "securityContext", "runAsNonRoot") != true {
			t.Errorf("%s: pods must run as non-root", name)
		}
		c := dig(pod, "containers", 0)
		args := strs(dig(c, "args"))
		cmd := checkArgs(t, name, args)
		source := cmd == "replicate" || cmd == "backfill"
		if source {
			sources++
			if r, _ := dig(d, "spec", "replicas").(int); r != 1 || kind != "StatefulSet" {
				t.Errorf("%s: a source runs as a StatefulSet of exactly one replica, not a %s of %v", name, kind, dig(d, "spec", "replicas"))
			}
		}
		for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
			if got := dig(c, probe, "httpGet", "path"); got != path {
				t.Errorf("%s: %s on %v, want %s", name, probe, got, path)
			}
		}
		if dig(pod, "terminationGracePeriodSeconds") == nil {
			t.Errorf("%s: no terminationGracePeriodSeconds for the graceful shutdown", name)
		}
		// The mounted configuration validates with the container's
		// environment.
		var env []string
		for _, e := range dig(c, "env").([]any) {
			if v, ok := dig(e, "value").(string); ok {
				env = append(env, toString(dig(e, "name"))+"="+v)
			} else {
				env = append(env, toString(dig(e, "name"))+"=from-a-secret")
			}
		}
		for i, a := range args {
			if a != "--config" {
				continue
			}
			body, ok := configs[filepath.Base(args[i+1])]
			if !ok {
				t.Fatalf("%s: --config %s is not in the ConfigMap", name, args[i+1])
			}
			p := filepath.Join(t.TempDir(), "pipeline.yaml")
			must(t, os.WriteFile(p, []byte(body), 0o600))
			res := stack.RunEnv(testCtx(t, time.Minute), t, env, "config", "validate", "--config", p)
			if res.Code != 0 {
				t.Errorf("%s: the mounted configuration does not validate:\n%s%s", name, res.Stdout, res.Stderr)
			}
			var cfg struct {
				MetricsAddr string `yaml:"metrics_addr"`
				Checkpoint  struct {
					Dir string `yaml:"dir"`
				} `yaml:"checkpoint"`
			}
			// As cutover reads it: ${VAR}s expanded first.
			expanded := envRef.ReplaceAllStringFunc(body, func(ref string) string {
				for _, e := range env {
					if k, v, _ := strings.Cut(e, "="); "${"+k+"}" == ref {
						return v
					}
				}
				return ref
			})
			must(t, yaml.Unmarshal([]byte(expanded), &cfg))
			// Flags win over the file (the chart passes these two).
			if v, ok := flagValue(args, "--metrics-addr"); ok {
				cfg.MetricsAddr = v
			}
			if v, ok := flagValue(args, "--checkpoint-dir"); ok {
				cfg.Checkpoint.Dir = v
			}
			checkProbePort(t, name, c, cfg.MetricsAddr)
			if source {
				checkOnClaim(t, name, d, c, cfg.Checkpoint.Dir)
			}
		}
	}
	if sources != 1 {
		t.Errorf("%s: %d sources; want exactly one", where, sources)
	}
}

// flagValue is the value args give flag (--flag value or --flag=value),
// the last one if several do.
func flagValue(args []string, flag string) (value string, ok bool) {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			value, ok = args[i+1], true
		} else if v, found := strings.CutPrefix(a, flag+"="); found {
			value, ok = v, true
		}
	}
	return value, ok
}

// envRef is a ${VAR} reference in a configuration file; its group is VAR.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// checkProbePort fails t unless container c's probes reach the port that
// metricsAddr (the configuration's metrics_addr) opens.
func checkProbePort(t *testing.T, name string, c any, metricsAddr string) {
	t.Helper()
	_, want, err := net.SplitHostPort(metricsAddr)
	if err != nil {
		t.Errorf("%s: metrics_addr %q: %v (the probes need it)", name, metricsAddr, err)
		return
	}
	ports := map[string]string{}
	for _, p := range dig(c, "ports").([]any) {
		ports[toString(dig(p, "name"))] = fmt.Sprint(dig(p, "containerPort"))
	}
	for _, probe := range []string{"livenessProbe", "readinessProbe"} {
		port := fmt.Sprint(dig(c, probe, "httpGet", "port"))
		if named, ok := ports[port]; ok {
			port = named
		}
		if port != want {
			t.Errorf("%s: %s on port %s, but metrics_addr %q serves %s", name, probe, port, metricsAddr, want)
		}
	}
}

// checkOnClaim fails t unless dir is on a volume of workload d's container
// c that comes from a volumeClaimTemplate.
func checkOnClaim(t *testing.T, name string, d map[string]any, c any, dir string) {
	t.Helper()
	claims := map[string]bool{}
	if tpl, ok := dig(d, "spec", "volumeClaimTemplates").([]any); ok {
		for _, v := range tpl {
			claims[toString(dig(v, "metadata", "name"))] = true
		}
	}
	mounts, _ := dig(c, "volumeMounts").([]any)
	for _, m := range mounts {
		mp := filepath.Clean(toString(dig(m, "mountPath")))
		if dir == mp || strings.HasPrefix(filepath.Clean(dir), mp+"/") {
			if !claims[toString(dig(m, "name"))] {
				t.Errorf("%s: checkpoint.dir %s is on volume %v, not on a volumeClaimTemplate: checkpoints would die with the pod", name, dir, dig(m, "name"))
			}
			return
		}
	}
	t.Errorf("%s: checkpoint.dir %q is on no mounted volume: checkpoints would die with the pod (and the root filesystem is read-only)", name, dir)
}

func TestDockerfileAndCompose(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../deploy/docker/Dockerfile")
	must(t, err)
	df := string(raw)
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/cutover", "ENTRYPOINT"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(user) == 0 || strings.HasPrefix(user[len(user)-1][1], "0") || strings.HasPrefix(user[len(user)-1][1], "root") {
		t.Errorf("the image must end with a non-root USER, got %v", user)
	}
	docs := yamlDocs(t, "../deploy/docker/compose.yaml")
	c := dig(docs[0], "services", "cutover")
	if c == nil {
		t.Fatal("compose has no cutover service")
	}
	args := strs(dig(c, "command"))
	checkArgs(t, "compose", args)
	res := stack.Run(testCtx(t, time.Minute), t, append([]string{"config", "validate"}, args[1:]...)...)
	if res.Code != 0 {
		t.Errorf("compose's pipeline does not validate:\n%s%s", res.Stdout, res.Stderr)
	}
	for _, svc := range []string{"redis", "kafka", "dynamodb"} {
		if dig(docs[0], "services", svc) == nil {
			t.Errorf("compose lacks %s", svc)
		}
	}
}
