package session

import (
	"context"
	"fmt"

	"github.com/callgate/callgate/engine/inspect"
	"github.com/callgate/callgate/engine/script"
	"github.com/tidwall/gjson"
)

// inspectEncoded tells the request's inspector flow, if any, what the core encoded: the
// token's claim names (never their values) and its size. The encoder adds iat, exp and
// jti, as NextAuth's encode does.
func inspectEncoded(ctx context.Context, why string, token script.JSON, encoded string) {
	f := inspect.FromContext(ctx)
	if f == nil {
		return
	}
	var claims []string
	gjson.ParseBytes(token).ForEach(func(k, _ gjson.Result) bool {
		claims = append(claims, k.String())
		return true
	})
	claims = append(claims, "iat", "exp", "jti")
	f.Core("token", fmt.Sprintf("%s: %d claims encoded into a %d-byte token", why, len(claims), len(encoded)),
		map[string]any{"claims": claims, "bytes": len(encoded)})
}
