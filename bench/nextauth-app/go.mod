// Not Go: this go.mod only marks a module boundary, so that `go list/vet/test ./...` from the
// repository root never descend into node_modules (whatever npm ci puts there).
module callgate.invalid/bench/nextauth-app
