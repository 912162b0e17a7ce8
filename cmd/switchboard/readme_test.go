//go:build unix

// The README test: every ```sh block of README.md runs, in order, as a new
// user would run it on a fresh clone, and every curl in it must answer as
// the README says. So the README cannot drift from the binary.
//
// How a block runs:
//   - Shell commands run in bash (set -eu), in one working directory with
//     ./bin/switchboard, block after block; shell variables a block sets
//     (H, J, PG, APP, ...) carry over to the next, and each must be
//     non-empty.
//   - `make run` and `./bin/switchboard node ...` start a node in the
//     background (the README runs each in a terminal of its own); the test
//     goes on once its /healthz serves. Any `make TARGET [VAR=value ...]`
//     runs the target's recipe from the Makefile, its variables filled
//     (makeCommand); the working directory has the repository's
//     simulations/ folder for the scenarios.
//   - Each curl must answer 2xx, or the status the command's comment shows
//     (`# -> 201`). A comment's {"key":value, ...} must match the reply's
//     top-level fields; a comment's {key, key} names fields the reply has.
//     A comment on a line of its own belongs to the command above it.
//   - An HTML comment before a block says what the test does besides:
//     <!-- readme-test: skip: REASON --> skips the block,
//     <!-- readme-test: skip "COMMAND": REASON --> skips commands starting
//     with COMMAND, <!-- readme-test: kill NAME ... --> SIGKILLs the nodes
//     started with --name NAME first, and <!-- readme-test: stop NAME ... -->
//     stops them as a user's Ctrl-C does. Skips are logged with their
//     reasons.
//
// The one mapping from the README's fixed addresses to the test's
// (readmePorts, readmeStore): every README port on 127.0.0.1 or localhost
// becomes a free port, also as the nodes' defaults (SWITCHBOARD_HTTP and
// the like); the PostgreSQL URL and createdb command name a database the
// test creates beside SWITCHBOARD_TEST_POSTGRES's and drops at the end;
// an output folder under /tmp is one in the test's working directory.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/internal/nodeproc"
)

// readmePorts are the README's fixed ports, each replaced by a free one.
// The first five are a node's defaults.
var readmePorts = []struct {
	port, env string
}{
	{"8080", "SWITCHBOARD_HTTP"}, {"5060", "SWITCHBOARD_SIP"}, {"5353", "SWITCHBOARD_DNS"},
	{"7946", "SWITCHBOARD_GOSSIP"}, {"8090", "SWITCHBOARD_ACTOR"},
	{"8081", ""}, {"8082", ""}, {"8091", ""}, {"8092", ""}, {"7947", ""}, {"7948", ""},
	{"5070", ""}, {"5080", ""}, {"5354", ""}, {"5355", ""},
}

// readmeStore are the README's PostgreSQL strings, replaced by the test's
// database; each must still be in the README.
var readmeStore = struct{ url, createdb string }{
	url:      "postgres://postgres@127.0.0.1:5432/switchboard",
	createdb: "createdb -h 127.0.0.1 -U postgres switchboard",
}

// readmeBlock is one ```sh block and the directive before it.
type readmeBlock struct {
	line      int
	directive string
	cmds      []readmeCmd
}

// readmeCmd is one command of a block: its shell text without the
// comment, and the comment.
type readmeCmd struct {
	line          int
	text, comment string
}

func TestREADME_CommandBlocksAnswerAsShown(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the README test runs the README's curl commands: apt-get install curl")
		}
		t.Skip("the README test runs the README's curl commands: apt-get install curl")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := parseReadme(t, string(readme))
	r := newReadmeRun(t)
	for _, b := range blocks {
		r.run(t, b)
		if t.Failed() {
			return // later blocks build on this one
		}
	}
	for from, used := range r.storeUsed {
		if !used {
			t.Errorf("the README no longer holds %q; update readmeStore to what it says now", from)
		}
	}
}

// parseReadme returns the README's ```sh blocks, split into commands.
func parseReadme(t *testing.T, text string) []readmeBlock {
	t.Helper()
	var blocks []readmeBlock
	lines := strings.Split(text, "\n")
	directive := regexp.MustCompile(`^<!-- readme-test: (.*) -->$`)
	for i := 0; i < len(lines); i++ {
		if lines[i] != "```sh" {
			continue
		}
		b := readmeBlock{line: i + 1}
		if i > 0 {
			if m := directive.FindStringSubmatch(lines[i-1]); m != nil {
				b.directive = m[1]
			}
		}
		end := i + 1
		for end < len(lines) && lines[end] != "```" {
			end++
		}
		if end == len(lines) {
			t.Fatalf("README.md:%d: the block never closes", i+1)
		}
		b.cmds = splitCommands(lines[i+1:end], i+2)
		blocks = append(blocks, b)
		i = end
	}
	if len(blocks) < 10 {
		t.Fatalf("found %d ```sh blocks in README.md; the README test expects the README's examples there", len(blocks))
	}
	return blocks
}

// splitCommands cuts a block's lines into commands: a command goes on past
// a line break inside quotes or after a backslash; # outside quotes starts
// its comment. first is the line number of lines[0].
func splitCommands(lines []string, first int) []readmeCmd {
	var cmds []readmeCmd
	var cur readmeCmd
	var text, comment strings.Builder
	var quote byte
	flush := func() {
		cur.text, cur.comment = strings.TrimSpace(text.String()), strings.TrimSpace(comment.String())
		switch {
		case cur.text != "":
			cmds = append(cmds, cur)
		case cur.comment != "" && len(cmds) > 0: // a comment line belongs to the command above
			cmds[len(cmds)-1].comment += " " + cur.comment
		}
		cur = readmeCmd{}
		text.Reset()
		comment.Reset()
	}
	for n, line := range lines {
		if cur.line == 0 {
			cur.line = first + n
		}
		for i := 0; i < len(line); i++ {
			c := line[i]
			switch {
			case quote != 0:
				if c == '\\' && quote == '"' && i+1 < len(line) {
					text.WriteByte(c)
					i++
					c = line[i]
				} else if c == quote {
					quote = 0
				}
			case c == '\'' || c == '"':
				quote = c
			case c == '#' && (i == 0 || line[i-1] == ' '):
				comment.WriteString(line[i+1:])
				i = len(line)
				continue
			}
			text.WriteByte(c)
		}
		trimmed := strings.TrimRight(text.String(), " ")
		if quote == 0 && !strings.HasSuffix(trimmed, "\\") {
			flush()
			continue
		}
		text.WriteByte('\n')
	}
	flush()
	return cmds
}

// readmeRun is the state the README's blocks share: the working directory,
// the port mapping, the nodes started, the shell variables.
type readmeRun struct {
	dir       string // working directory, with bin/switchboard
	rt        string // the curl wrapper's records and the shell state
	ports     map[string]string
	env       []string // the nodes' default addresses, mapped
	store     map[string]string
	storeUsed map[string]bool
	nodes     map[string]*proc // by --name ("" for make run's)
	vars      []string         // shell variables the blocks set
}

func newReadmeRun(t *testing.T) *readmeRun {
	t.Helper()
	r := &readmeRun{dir: t.TempDir(), rt: t.TempDir(), ports: map[string]string{}, nodes: map[string]*proc{},
		storeUsed: map[string]bool{}}
	if err := os.Mkdir(filepath.Join(r.dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(switchboardBinary(t), filepath.Join(r.dir, "bin", "switchboard")); err != nil {
		t.Fatal(err)
	}
	for _, p := range readmePorts {
		r.ports[p.port] = freePort(t)
		if p.env != "" {
			r.env = append(r.env, p.env+"=127.0.0.1:"+r.ports[p.port])
		}
	}
	r.store = readmeDatabase(t)
	scenarios, err := filepath.Abs("../../simulations")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(scenarios, filepath.Join(r.dir, "simulations")); err != nil {
		t.Fatal(err)
	}
	return r
}

// readmeDatabase maps the README's PostgreSQL strings to the test's own
// database (see postgresDSN).
func readmeDatabase(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{
		readmeStore.url:      postgresDSN(t),
		readmeStore.createdb: "true", // postgresDSN created it
	}
}

// makeCommand returns the first command of the recipe that a README's
// `make TARGET [VAR=value ...]` runs, its $(VAR)s filled from the command
// line or else from the Makefile's assignments.
func makeCommand(t *testing.T, command string) string {
	t.Helper()
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	words := strings.Fields(command)
	recipe := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(words[1]) + `:.*\n\t(.+)$`).FindSubmatch(mk)
	if recipe == nil {
		t.Fatalf("%s: the Makefile has no %s target with a recipe", command, words[1])
	}
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z_]+)\s*[:?]?=[ \t]*(\S*)`).FindAllSubmatch(mk, -1) {
		vars[string(m[1])] = string(m[2])
	}
	for _, w := range words[2:] {
		if k, v, ok := strings.Cut(w, "="); ok {
			vars[k] = v
		}
	}
	return regexp.MustCompile(`\$\(([A-Z_]+)\)`).ReplaceAllStringFunc(string(recipe[1]), func(ref string) string {
		v, ok := vars[ref[2:len(ref)-1]]
		if !ok {
			t.Fatalf("%s: the recipe names %s, which the Makefile does not set", command, ref)
		}
		return v
	})
}

var (
	readmeAddr     = regexp.MustCompile(`\b(127\.0\.0\.1|localhost):(\d+)\b`)
	readmeAssigned = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=`)
	readmeCurl     = regexp.MustCompile(`(^|[\s($|;&])curl\s`)
	readmeStatus   = regexp.MustCompile(`->\s*(\d{3})\b`)
	readmeFields   = regexp.MustCompile(`\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}`)
	readmeKV       = regexp.MustCompile(`"([^"]+)":\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null)`)
	readmeKeys     = regexp.MustCompile(`^\s*[a-z_]+(\s*,\s*[a-z_]+)*\s*$`)
	readmeMake     = regexp.MustCompile(`^make\s+[a-z-]+(\s+[A-Z_]+=\S*)*$`)
	readmeTmp      = regexp.MustCompile(`(\s)/tmp/`)
)

// mapped is a command with the README's addresses replaced by the test's.
func (r *readmeRun) mapped(cmd string) string {
	for from, to := range r.store {
		if strings.Contains(cmd, from) {
			r.storeUsed[from] = true
			cmd = strings.ReplaceAll(cmd, from, to)
		}
	}
	cmd = readmeTmp.ReplaceAllString(cmd, "${1}"+r.dir+"/tmp/")
	return readmeAddr.ReplaceAllStringFunc(cmd, func(a string) string {
		m := readmeAddr.FindStringSubmatch(a)
		if p, ok := r.ports[m[2]]; ok {
			return m[1] + ":" + p
		}
		return a
	})
}

func (r *readmeRun) run(t *testing.T, b readmeBlock) {
	t.Helper()
	var skipPrefix, skipReason string
	switch d := b.directive; {
	case strings.HasPrefix(d, "skip:"):
		t.Logf("README.md:%d: block skipped: %s", b.line, strings.TrimSpace(d[len("skip:"):]))
		return
	case strings.HasPrefix(d, "skip \""):
		m := regexp.MustCompile(`^skip "([^"]+)":\s*(.+)$`).FindStringSubmatch(d)
		if m == nil {
			t.Fatalf("README.md:%d: bad directive %q; want skip \"COMMAND\": REASON", b.line-1, d)
		}
		skipPrefix, skipReason = m[1], m[2]
	case strings.HasPrefix(d, "kill ") || strings.HasPrefix(d, "stop "):
		verb, names, _ := strings.Cut(d, " ")
		for _, name := range strings.Fields(names) {
			p, ok := r.nodes[name]
			if !ok {
				t.Fatalf("README.md:%d: %s %s: no node of that name was started", b.line-1, verb, name)
			}
			if verb == "kill" {
				p.Kill()
			} else if err := p.Stop(20 * time.Second); err != nil {
				t.Fatalf("README.md:%d: stop %s: %v", b.line-1, name, err)
			}
		}
	case d != "":
		t.Fatalf("README.md:%d: unknown directive %q", b.line-1, d)
	}
	var segment []readmeCmd
	for _, c := range b.cmds {
		switch {
		case skipPrefix != "" && strings.HasPrefix(c.text, skipPrefix):
			t.Logf("README.md:%d: %q skipped: %s", c.line, c.text, skipReason)
		case c.text == "make run" || strings.HasPrefix(c.text, "./bin/switchboard node "):
			r.shell(t, segment)
			segment = nil
			r.startNode(t, c)
		default:
			segment = append(segment, c)
		}
		if t.Failed() {
			return
		}
	}
	r.shell(t, segment)
}

// startNode starts the node a README command starts, in the background.
func (r *readmeRun) startNode(t *testing.T, c readmeCmd) {
	t.Helper()
	text := c.text
	if text == "make run" {
		text = makeCommand(t, text)
	}
	text = r.mapped(text)
	name := ""
	if m := regexp.MustCompile(`--name\s+(\S+)`).FindStringSubmatch(text); m != nil {
		name = m[1]
	}
	httpAddr := "127.0.0.1:" + r.ports["8080"]
	if m := regexp.MustCompile(`--http\s+(\S+)`).FindStringSubmatch(text); m != nil {
		httpAddr = m[1]
	}
	cmd := exec.Command("bash", "-c", r.prelude()+"exec "+text)
	cmd.Dir = r.dir
	cmd.Env = nodeproc.Env(r.env...)
	p, err := nodeproc.StartCmd(context.Background(), cmd, httpAddr, "")
	if err != nil {
		t.Fatalf("README.md:%d: %s: %v", c.line, c.text, err)
	}
	r.nodes[name] = watch(t, p)
}

// prelude is what every bash the test starts runs first: strict mode, the
// curl wrapper and the variables earlier blocks set.
func (r *readmeRun) prelude() string {
	return fmt.Sprintf(`set -eu
RT=%q
curl() {
  local n; n=$(( $(cat "$RT/n" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$RT/n"
  command curl -D "$RT/$n.head" "$@" | tee "$RT/$n.Body"
  return "${PIPESTATUS[0]}"
}
if [ -f "$RT/state" ]; then source "$RT/state"; fi
`, r.rt)
}

// shell runs commands in one bash and checks every curl's answer.
func (r *readmeRun) shell(t *testing.T, cmds []readmeCmd) {
	t.Helper()
	if len(cmds) == 0 {
		return
	}
	if err := os.WriteFile(filepath.Join(r.rt, "n"), []byte("0"), 0o644); err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	script.WriteString(r.prelude())
	var curls []readmeCmd // one entry per curl the commands run, in order
	for _, c := range cmds {
		text := c.text
		if readmeMake.MatchString(text) {
			text = makeCommand(t, text)
		}
		script.WriteString(r.mapped(text) + "\n")
		for range readmeCurl.FindAllStringIndex(c.text, -1) {
			curls = append(curls, c)
		}
		if m := readmeAssigned.FindStringSubmatch(c.text); m != nil && !slices.Contains(r.vars, m[1]) {
			r.vars = append(r.vars, m[1])
		}
	}
	if len(r.vars) > 0 {
		fmt.Fprintf(&script, "declare -p %s > \"$RT/state\"\n", strings.Join(r.vars, " "))
		for _, v := range r.vars {
			fmt.Fprintf(&script, "[ -n \"$%s\" ] || { echo 'README variable %s is empty' >&2; exit 1; }\n", v, v)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute) // the simulations' block takes minutes
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = r.dir
	cmd.Env = nodeproc.Env(r.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a background job (the proxy) goes with it
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	where := fmt.Sprintf("README.md:%d-%d", cmds[0].line, cmds[len(cmds)-1].line)
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: the commands failed (%v):\n%s\noutput:\n%s", where, err, commandsText(cmds), nodeproc.Tail(out.String()))
	}
	ran, _ := os.ReadFile(filepath.Join(r.rt, "n"))
	if n, _ := strconv.Atoi(strings.TrimSpace(string(ran))); n != len(curls) {
		t.Fatalf("%s: %d curl commands ran, the README shows %d:\n%s", where, n, len(curls), commandsText(cmds))
	}
	for i, c := range curls {
		r.checkAnswer(t, i+1, c)
	}
	t.Logf("%s: %d commands ran, %d curl answers checked", where, len(cmds), len(curls))
}

func commandsText(cmds []readmeCmd) string {
	var b strings.Builder
	for _, c := range cmds {
		fmt.Fprintf(&b, "  %d: %s\n", c.line, c.text)
	}
	return b.String()
}

// checkAnswer checks the n-th curl's reply against what the README shows.
func (r *readmeRun) checkAnswer(t *testing.T, n int, c readmeCmd) {
	t.Helper()
	head, _ := os.ReadFile(filepath.Join(r.rt, fmt.Sprintf("%d.head", n)))
	body, _ := os.ReadFile(filepath.Join(r.rt, fmt.Sprintf("%d.Body", n)))
	status := 0
	for _, l := range strings.Split(string(head), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && strings.HasPrefix(f[0], "HTTP/") {
			status, _ = strconv.Atoi(f[1])
		}
	}
	fail := func(format string, args ...any) {
		t.Errorf("README.md:%d: %s\n  %s\n  reply %d %s", c.line, fmt.Sprintf(format, args...), c.text, status, nodeproc.Tail(string(body)))
	}
	if m := readmeStatus.FindStringSubmatch(c.comment); m != nil {
		if strconv.Itoa(status) != m[1] {
			fail("answered %d, the README shows %s", status, m[1])
		}
	} else if status < 200 || status > 299 {
		fail("answered %d, not 2xx", status)
	}
	m := readmeFields.FindStringSubmatch(c.comment)
	if m == nil {
		return
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		fail("the README shows JSON fields %s; the reply is not a JSON object: %v", m[0], err)
		return
	}
	if readmeKeys.MatchString(m[1]) {
		for k := range strings.SplitSeq(m[1], ",") {
			if _, ok := got[strings.TrimSpace(k)]; !ok {
				fail("the reply has no field %q, which the README shows", strings.TrimSpace(k))
			}
		}
		return
	}
	for _, kv := range readmeKV.FindAllStringSubmatch(m[1], -1) {
		var want any
		if err := json.Unmarshal([]byte(kv[2]), &want); err != nil {
			t.Fatalf("README.md:%d: %s: %v", c.line, kv[0], err)
		}
		if g, ok := got[kv[1]]; !ok || fmt.Sprint(g) != fmt.Sprint(want) {
			fail("field %q is %v, the README shows %v", kv[1], g, want)
		}
	}
}
