package test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The Helm chart (deploy/helm/cutover) is checked with the real tools:
// helm lint and helm template, kubeconform against the Kubernetes JSON
// schemas, and the rendered workloads against the binary, as the plain
// manifests are (checkWorkloads). `make tools` installs the three at the
// versions the Makefile pins; a missing one fails the test, it never skips.

const chartDir = "../deploy/helm/cutover"

// chartTools are the paths of what `make tools` installs.
type chartTools struct {
	helm, kubeconform string
	// schemas is the directory of the Kubernetes JSON schemas, of version
	// kubeVersion.
	schemas, kubeVersion string
}

// needChartTools finds the tools where the Makefile installs them, at the
// versions it pins, failing t with how to install a missing one.
func needChartTools(t *testing.T) chartTools {
	t.Helper()
	mk, err := os.ReadFile("../Makefile")
	must(t, err)
	pinned := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + name + `\s*:=\s*(\S+)`).FindSubmatch(mk)
		if m == nil {
			t.Fatalf("the Makefile pins no %s", name)
		}
		return string(m[1])
	}
	gobin := os.Getenv("GOBIN")
	if gobin == "" {
		out, err := exec.CommandContext(testCtx(t, time.Minute), "go", "env", "GOPATH").Output()
		must(t, err)
		gobin = filepath.Join(filepath.SplitList(strings.TrimSpace(string(out)))[0], "bin")
	}
	cache := os.Getenv("CUTOVER_CACHE_DIR")
	if cache == "" {
		base, err := os.UserCacheDir()
		must(t, err)
		cache = filepath.Join(base, "cutover")
	}
	tools := chartTools{
		helm:        filepath.Join(gobin, "helm-"+pinned("HELM_VERSION")),
		kubeconform: filepath.Join(gobin, "kubeconform-"+pinned("KUBECONFORM_VERSION")),
		schemas:     filepath.Join(cache, "kubernetes-json-schema-"+pinned("KUBERNETES_SCHEMAS_VERSION")),
		kubeVersion: pinned("KUBERNETES_VERSION"),
	}
	for _, p := range []string{tools.helm, tools.kubeconform, filepath.Join(tools.schemas, ".complete")} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing: install helm, kubeconform and the Kubernetes schemas with `make tools` (make test does this): %v", p, err)
		}
	}
	return tools
}

// run runs a tool until it exits, failing t unless it exits 0.
func (ct chartTools) run(ctx context.Context, t *testing.T, tool string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, tool, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(tool), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// validate runs kubeconform: it validates the manifests in files against the Kubernetes
// schemas, strictly (no unknown field), and returns how many it found
// valid. The Prometheus operator's ServiceMonitor is a CRD without a
// schema there: it is skipped, and checkChartWiring checks it.
func (ct chartTools) validate(ctx context.Context, t *testing.T, files ...string) int {
	t.Helper()
	out := ct.run(ctx, t, ct.kubeconform, append([]string{"-strict", "-summary", "-skip", "ServiceMonitor",
		"-schema-location", filepath.Join(ct.schemas, "{{ .ResourceKind }}{{ .KindSuffix }}.json")}, files...)...)
	m := regexp.MustCompile(`Valid: (\d+), Invalid: 0, Errors: 0`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("kubeconform: no clean summary:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestHelmChart lints and renders the chart with its default values and
// with each file of its ci/ folder, validates the rendering against the
// Kubernetes schemas, and checks its workloads against the binary.
func TestHelmChart(t *testing.T) {
	t.Parallel()
	tools := needChartTools(t)
	valueFiles, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	must(t, err)
	for _, values := range append([]string{""}, valueFiles...) {
		name := "defaults"
		var flags []string
		if values != "" {
			name = strings.TrimSuffix(filepath.Base(values), "-values.yaml")
			flags = []string{"--values", values}
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 5*time.Minute)
			tools.run(ctx, t, tools.helm, append([]string{"lint", "--strict", chartDir}, flags...)...)
			rendered := tools.run(ctx, t, tools.helm, append([]string{"template", "release", chartDir,
				"--kube-version", tools.kubeVersion}, flags...)...)
			file := filepath.Join(t.TempDir(), "rendered.yaml")
			must(t, os.WriteFile(file, []byte(rendered), 0o600))
			docs := yamlDocs(t, file)
			var monitors int
			for _, d := range docs {
				if d["kind"] == "ServiceMonitor" {
					monitors++
				}
			}
			if valid := tools.validate(ctx, t, file); valid+monitors != len(docs) {
				t.Errorf("kubeconform found %d of %d manifests valid (and skipped %d ServiceMonitors)", valid, len(docs), monitors)
			}
			checkWorkloads(t, name, docs)
			checkChartWiring(t, name, docs)
		})
	}
}

// checkChartWiring checks what ties the chart's manifests together: each
// Service selects a workload's pods and targets a port they open, each
// ServiceMonitor selects Services by their labels and scrapes /metrics on
// a port they name, and the dashboard ConfigMap holds deploy/grafana's
// dashboard.
func checkChartWiring(t *testing.T, where string, docs []map[string]any) {
	t.Helper()
	subset := func(sel, labels any) bool {
		s, _ := sel.(map[string]any)
		l, _ := labels.(map[string]any)
		for k, v := range s {
			if l[k] != v {
				return false
			}
		}
		return len(s) > 0
	}
	byKind := map[string][]map[string]any{}
	for _, d := range docs {
		byKind[toString(d["kind"])] = append(byKind[toString(d["kind"])], d)
	}
	workloads := append(slices.Clone(byKind["StatefulSet"]), byKind["Deployment"]...)
	for _, svc := range byKind["Service"] {
		name := where + ": Service " + toString(dig(svc, "metadata", "name"))
		matched := false
		for _, w := range workloads {
			if !subset(dig(svc, "spec", "selector"), dig(w, "spec", "template", "metadata", "labels")) {
				continue
			}
			matched = true
			var names []string
			for _, p := range dig(w, "spec", "template", "spec", "containers", 0, "ports").([]any) {
				names = append(names, toString(dig(p, "name")))
			}
			for _, p := range dig(svc, "spec", "ports").([]any) {
				if target := toString(dig(p, "targetPort")); !slices.Contains(names, target) {
					t.Errorf("%s: targetPort %q is none of %s's ports %v", name, target, dig(w, "metadata", "name"), names)
				}
			}
		}
		if !matched {
			t.Errorf("%s selects no workload's pods", name)
		}
	}
	for _, sm := range byKind["ServiceMonitor"] {
		name := where + ": ServiceMonitor " + toString(dig(sm, "metadata", "name"))
		if got := dig(sm, "apiVersion"); got != "monitoring.coreos.com/v1" {
			t.Errorf("%s: apiVersion %v", name, got)
		}
		var selected []string
		for _, svc := range byKind["Service"] {
			if !subset(dig(sm, "spec", "selector", "matchLabels"), dig(svc, "metadata", "labels")) {
				continue
			}
			selected = append(selected, toString(dig(svc, "metadata", "name")))
			for _, e := range dig(sm, "spec", "endpoints").([]any) {
				found := false
				for _, p := range dig(svc, "spec", "ports").([]any) {
					found = found || dig(p, "name") == dig(e, "port")
				}
				if !found || dig(e, "path") != "/metrics" {
					t.Errorf("%s: endpoint %v: want /metrics on a port %s names", name, e, dig(svc, "metadata", "name"))
				}
			}
		}
		if len(selected) != len(byKind["Service"]) {
			t.Errorf("%s selects the Services %v, want every one of %d (the source and the sinks)", name, selected, len(byKind["Service"]))
		}
	}
	want, err := os.ReadFile("../deploy/grafana/cutover.json")
	must(t, err)
	dashboards := 0
	for _, cm := range byKind["ConfigMap"] {
		if got, ok := dig(cm, "data", "cutover.json").(string); ok {
			dashboards++
			if strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
				t.Errorf("%s: the dashboard ConfigMap %s is not deploy/grafana/cutover.json", where, dig(cm, "metadata", "name"))
			}
		}
	}
	if dashboards != 1 {
		t.Errorf("%s: %d dashboard ConfigMaps, want 1", where, dashboards)
	}
}

// TestHelmDashboardIsTheGrafanaOne: Helm reads only files inside the
// chart, so the chart holds a copy of deploy/grafana/cutover.json; this
// keeps the two the same.
func TestHelmDashboardIsTheGrafanaOne(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile("../deploy/grafana/cutover.json")
	must(t, err)
	got, err := os.ReadFile(filepath.Join(chartDir, "dashboards", "cutover.json"))
	must(t, err)
	if !bytes.Equal(got, want) {
		t.Fatal("deploy/helm/cutover/dashboards/cutover.json differs from deploy/grafana/cutover.json: " +
			"edit the one in deploy/grafana, then `cp deploy/grafana/cutover.json deploy/helm/cutover/dashboards/`")
	}
}

// TestKubernetesManifestsMatchSchemas validates the plain manifests of
// deploy/kubernetes against the Kubernetes schemas too.
func TestKubernetesManifestsMatchSchemas(t *testing.T) {
	t.Parallel()
	tools := needChartTools(t)
	files := kubernetesManifests(t)
	docs := 0
	for _, f := range files {
		docs += len(yamlDocs(t, f))
	}
	if valid := tools.validate(testCtx(t, 5*time.Minute), t, files...); valid != docs {
		t.Errorf("kubeconform found %d of %d manifests valid", valid, docs)
	}
}
