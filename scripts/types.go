// Package scripts holds what the gateway ships for script authors beside the binary: the
// TypeScript declarations of the built-in modules and globals (types/*.d.ts), embedded so
// that `gateway check --types` type-checks any scripts directory against them.
package scripts

import "embed"

// Types holds types/*.d.ts.
//
//go:embed types/*.d.ts
var Types embed.FS
