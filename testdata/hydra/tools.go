//go:build tools

// Package hydratool pins Ory Hydra, the OpenID Connect provider the OAuth
// end-to-end tests run against. It lives in a module of its own so that the
// gateway's go.mod never carries Hydra's dependency graph.
package hydratool

import _ "github.com/ory/hydra/v2"
