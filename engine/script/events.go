package script

import (
	"context"

	"github.com/dop251/goja"
)

// Emit fires an event handler with its argument ({user, account, ...} as NextAuth v4
// passes each event). Its result is ignored. events.session runs on the request lane (it
// fires on every session read), the others on the sign-in lane. The argument reaches the
// script as a Shared Object: converted property by property as the handler reads it.
func (g *Generation) Emit(ctx context.Context, e Event, arg map[string]any) (err error) {
	name := e.String()
	defer recoverInto(name, &err)
	if !g.Defines(e) {
		return notDefined(name)
	}
	_, err = g.invoke(ctx, eventInfo[e].lane, name, name, ordered{Shared(arg), eventInfo[e].order}, nil, objectArgs, ignoreResult)
	return err
}

func ignoreResult(*vm, string, goja.Value) (any, error) { return nil, nil }
