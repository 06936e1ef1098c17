// Package archtest holds the test that keeps the module's import rules (the layers written
// down in docs/architecture.md): it has no code of its own.
package archtest
