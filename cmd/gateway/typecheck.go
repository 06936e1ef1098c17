package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/scripts"
)

// tscTimeout bounds one type-check: a cold tsc over a scripts directory takes seconds.
const tscTimeout = 2 * time.Minute

// errNoTSC says how to get a TypeScript compiler.
var errNoTSC = errors.New("no TypeScript compiler found (node_modules/.bin/tsc in the scripts directory or a parent, or tsc on PATH): install the project's own with `npm i -D typescript`, or pass --tsc PATH")

// findTSC is the project's tsc: node_modules/.bin/tsc in dir or the nearest parent that has
// one, else tsc on PATH.
func findTSC(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "node_modules", ".bin", "tsc")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	if p, err := exec.LookPath("tsc"); err == nil {
		return p, nil
	}
	return "", errNoTSC
}

// shippedTypes are the names of the embedded declaration files: a scripts directory that
// holds copies of them (as ./scripts does) has them left out, the embedded ones standing in.
func shippedTypes() ([]string, error) {
	entries, err := fs.ReadDir(scripts.Types, "types")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

// typeCheck runs tsc --noEmit over the TypeScript files of dir and the JavaScript files its
// compiler options check (// @ts-check ones, or all with checkJs), with the shipped
// declarations, and returns each diagnostic as an error at its file:line:column. dir's own
// tsconfig.json or jsconfig.json, when it has one, gives the compiler options.
func (c *cli) typeCheck(ctx context.Context, dir, tsc string) ([]*script.Error, error) {
	if tsc == "" {
		var err error
		if tsc, err = findTSC(dir); err != nil {
			return nil, err
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "callgate-types-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	names, err := shippedTypes()
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(tmp, "types"), 0o755); err != nil {
		return nil, err
	}
	include := []string{filepath.Join(abs, "**", "*.ts"), filepath.Join(abs, "**", "*.js")}
	exclude := []string{filepath.Join(abs, "**", "node_modules")}
	for _, n := range names {
		b, err := scripts.Types.ReadFile("types/" + n)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(tmp, "types", n), b, 0o644); err != nil {
			return nil, err
		}
		include = append(include, filepath.Join(tmp, "types", n))
		exclude = append(exclude, filepath.Join(abs, "types", n))
	}
	cfg := map[string]any{
		"compilerOptions": map[string]any{
			"target": "ES2022", "module": "ES2022", "moduleResolution": "bundler",
			"lib": []string{"ES2022"}, "types": []string{}, "strict": true,
			"allowJs": true, "noEmit": true, "allowImportingTsExtensions": true,
			"noErrorTruncation": true, "skipLibCheck": false,
		},
		"include": include,
		"exclude": exclude,
	}
	for _, own := range []string{"tsconfig.json", "jsconfig.json"} {
		if p := filepath.Join(abs, own); readableFile(p) {
			// The project's options win, but not its file lists (ours name the shipped
			// types) nor emitting.
			cfg["extends"] = p
			cfg["compilerOptions"] = map[string]any{"noEmit": true, "allowImportingTsExtensions": true, "noErrorTruncation": true, "types": []string{}}
			break
		}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	project := filepath.Join(tmp, "tsconfig.json")
	if err := os.WriteFile(project, b, 0o644); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, tscTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tsc, "--noEmit", "--pretty", "false", "-p", project)
	cmd.Dir = abs
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	errs := parseTSC(abs, out.String())
	var exit *exec.ExitError
	switch {
	case runErr == nil:
		return nil, nil
	case errors.As(runErr, &exit) && len(errs) > 0:
		return errs, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%s: %w", tsc, ctx.Err())
	}
	return nil, fmt.Errorf("%s: %v\n%s", tsc, runErr, strings.TrimSpace(out.String()))
}

// tscLine is one diagnostic of tsc --pretty false: path(line,col): error TSnnnn: message.
var tscLine = regexp.MustCompile(`^(.+)\((\d+),(\d+)\): (error|warning) (TS\d+): (.*)$`)

// parseTSC reads tsc's diagnostics; the indented lines after one continue its message.
// Paths are made relative to dir, as the other problems of check are.
func parseTSC(dir, out string) []*script.Error {
	var errs []*script.Error
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		m := tscLine.FindStringSubmatch(line)
		if m == nil {
			if len(errs) > 0 && strings.HasPrefix(line, "  ") {
				errs[len(errs)-1].Message += "\n    " + strings.TrimSpace(line)
			}
			continue
		}
		file := m[1]
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		if rel, err := filepath.Rel(dir, file); err == nil && !strings.HasPrefix(rel, "..") {
			file = rel
		}
		ln, _ := strconv.Atoi(m[2])
		col, _ := strconv.Atoi(m[3])
		e := &script.Error{Kind: script.KindInvalidResult, Name: m[5], Message: m[6], File: filepath.ToSlash(file), Line: ln, Column: col}
		e.SourceLine = fileLine(filepath.Join(dir, file), ln)
		errs = append(errs, e)
	}
	return errs
}

// fileLine is line n (1-based) of a file, or "".
func fileLine(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(string(b), "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return strings.TrimRight(lines[n-1], "\r")
}

func readableFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}
