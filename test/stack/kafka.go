package stack

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Kafka is a private one-node KRaft broker started for one test, from the
// jars deploy/local/stack installed, for tests that kill the broker (the
// shared one must stay up for every other test).
type Kafka struct {
	Addr string
	dir  string
	args []string
	cmd  *exec.Cmd
	log  *os.File
}

// NewKafka formats a data directory under t.TempDir() and starts a broker
// on free loopback ports; it is killed when the test ends.
func NewKafka(t testing.TB) *Kafka {
	t.Helper()
	k := &Kafka{Addr: "127.0.0.1:" + strconv.Itoa(freePort(t)), dir: t.TempDir()}
	k.launch(t, brokerListener{})
	return k
}

// brokerListener is a listener a private broker has besides PLAINTEXT
// (k.Addr) and its controller's: its name, address and settings.
type brokerListener struct {
	name, addr string
	props      []string
}

// launch writes the broker's settings into k.dir, formats its storage
// and starts it; it is killed when the test ends.
func (k *Kafka) launch(t testing.TB, extra brokerListener) {
	t.Helper()
	home, _ := os.UserHomeDir()
	cache := env("CUTOVER_CACHE_DIR", filepath.Join(env("XDG_CACHE_HOME", filepath.Join(home, ".cache")), "cutover"))
	cpFile := filepath.Join(cache, "kafka-"+env("CUTOVER_KAFKA_VERSION", "4.3.1")+".classpath")
	cp, err := os.ReadFile(cpFile)
	if err != nil {
		t.Fatalf("Kafka's jars are not installed (%v)\ninstall them with `deploy/local/stack up kafka` (make test does this)", err)
	}
	_, file, _, _ := runtime.Caller(0)
	log4j := filepath.Join(filepath.Dir(file), "..", "..", "deploy", "local", "kafka", "log4j2.yaml")
	controller := "127.0.0.1:" + strconv.Itoa(freePort(t))
	listeners := "PLAINTEXT://" + k.Addr + ",CONTROLLER://" + controller
	advertised := "PLAINTEXT://" + k.Addr
	protocols := "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
	if extra.name != "" {
		listeners += "," + extra.name + "://" + extra.addr
		advertised += "," + extra.name + "://" + extra.addr
		protocols += "," + extra.name + ":" + extra.name
	}
	props := filepath.Join(k.dir, "server.properties")
	conf := strings.Join(append([]string{
		"process.roles=broker,controller",
		"node.id=1",
		"controller.quorum.voters=1@" + controller,
		"listeners=" + listeners,
		"advertised.listeners=" + advertised,
		"controller.listener.names=CONTROLLER",
		"listener.security.protocol.map=" + protocols,
		"inter.broker.listener.name=PLAINTEXT",
		"log.dirs=" + filepath.Join(k.dir, "data"),
		"num.partitions=1",
		"auto.create.topics.enable=false",
		"offsets.topic.replication.factor=1",
		"offsets.topic.num.partitions=4",
		"transaction.state.log.replication.factor=1",
		"transaction.state.log.min.isr=1",
		"share.coordinator.state.topic.replication.factor=1",
		"share.coordinator.state.topic.min.isr=1",
		"group.initial.rebalance.delay.ms=0",
	}, extra.props...), "\n") + "\n"
	if err := os.WriteFile(props, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	classpath := strings.TrimSpace(string(cp))
	format := exec.Command("java", "-cp", classpath, "-Dlog4j2.configurationFile="+log4j, "kafka.tools.StorageTool", "format",
		"-t", base64.RawURLEncoding.EncodeToString(id), "-c", props)
	if out, err := format.CombinedOutput(); err != nil {
		t.Fatalf("format a private Kafka's storage: %v\n%s", err, out)
	}
	k.args = []string{"-Xms128m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + log4j, "-cp", classpath, "kafka.Kafka", props}
	k.start(t)
	t.Cleanup(k.Kill)
}

func (k *Kafka) start(t testing.TB) {
	t.Helper()
	logPath := filepath.Join(k.dir, "kafka.log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	k.log = f
	k.cmd = exec.Command("java", k.args...)
	k.cmd.Stdout, k.cmd.Stderr = f, f
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("start a private Kafka: %v", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if out, _ := os.ReadFile(logPath); strings.Contains(string(out), "Kafka Server started") {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, _ := os.ReadFile(logPath)
	t.Fatalf("a private Kafka did not start within 2 minutes:\n%s", Tail(string(out), 3000))
}

// Kill stops the broker with SIGKILL (its log survives in the page
// cache, as acknowledged writes do in a real crash).
func (k *Kafka) Kill() {
	if k.cmd != nil && k.cmd.Process != nil {
		_ = k.cmd.Process.Kill()
		_ = k.cmd.Wait()
		k.log.Close()
		k.cmd = nil
	}
}

// Restart starts a killed broker again on the same ports and data.
func (k *Kafka) Restart(t testing.TB) {
	t.Helper()
	k.Kill()
	k.start(t)
}

// Tail is the last n bytes of s (a process's log, for a failure message).
func Tail(s string, n int) string {
	if len(s) > n {
		return fmt.Sprint("…", s[len(s)-n:])
	}
	return s
}
