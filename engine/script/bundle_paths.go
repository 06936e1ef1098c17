package script

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// tsconfigNames are the files whose compilerOptions (paths and baseUrl above all, so that a
// Next.js app's `import { findUser } from "@/lib/users"` resolves) the bundler reads from the
// scripts directory, in order of preference. No file above the directory is read.
var tsconfigNames = []string{"tsconfig.json", "jsconfig.json"}

// scriptsTsconfig returns the scripts directory's tsconfig.json or jsconfig.json, "" when it
// has neither. The file itself must lie inside the directory (a symlink out is refused); what
// its paths map to is confined by the bundler's resolver like every import.
func scriptsTsconfig(dir string) (string, error) {
	for _, name := range tsconfigNames {
		path := filepath.Join(dir, name)
		if !readable(path) {
			continue
		}
		if err := insideDir(dir, path); err != nil {
			return "", &Error{Kind: KindThrown, Name: "ImportError", Message: fmt.Sprintf("%s: %v", name, err), File: name}
		}
		return path, nil
	}
	return "", nil
}

// tsconfigRaw is the tsconfig esbuild is given when the scripts directory has none: an
// empty one, which stops esbuild from looking for one in the directories above.
func tsconfigRaw(tsconfig string) string {
	if tsconfig != "" {
		return ""
	}
	return `{"compilerOptions":{}}`
}

// inNodeModules reports whether path lies in a node_modules directory: a bare import that
// resolves there is a package, not a file of the scripts mapped by tsconfig paths.
func inNodeModules(path string) bool {
	return slices.Contains(strings.Split(filepath.ToSlash(path), "/"), "node_modules")
}

// bareImportError is the refusal of a bare import that is neither a built-in module nor a
// file of the scripts directory mapped by its tsconfig.json paths.
func bareImportError(path string) error {
	if advice := importAdvice(path); advice != "" {
		return fmt.Errorf("import %q is not allowed: %s", path, advice)
	}
	return fmt.Errorf("import %q is not allowed: scripts may import only files inside the scripts directory (relative, or through the paths of its tsconfig.json) and the built-in modules %s, %s", path, builtinList, nextAuthList)
}

// moduleSource returns the source of a built-in module: callgate's own, or the stand-in for
// a next-auth module (nextauth_compat.go).
func moduleSource(path string) (string, bool) {
	if src, ok := builtinSource(path); ok {
		return src, true
	}
	return nextAuthSource(path)
}
