package bearer

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestCacheBoundsAndKeepsRefusalsApart: the cache holds at most its size, drops the oldest
// first, and a flood of refusals never pushes out an accepted token.
func TestCacheBoundsAndKeepsRefusalsApart(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	c := newCache(100)
	key := func(s string) [32]byte { return sha256.Sum256([]byte(s)) }
	good := &Verified{Provider: "idp"}
	c.put(key("good"), entry{v: good, until: now.Add(time.Hour)})
	for i := range 10_000 {
		c.put(key(fmt.Sprint("junk", i)), entry{err: errors.New("refused"), until: now.Add(time.Hour)})
	}
	if e, ok := c.get(key("good"), now); !ok || e.v != good {
		t.Errorf("after 10,000 refusals: the accepted token's answer is gone")
	}
	if n := len(c.refused.entries); n != 10 {
		t.Errorf("refusals kept: %d, want the refusal ring's size 10", n)
	}
	if _, ok := c.get(key("junk9999"), now); !ok {
		t.Errorf("the newest refusal is not cached")
	}
	if _, ok := c.get(key("junk0"), now); ok {
		t.Errorf("the oldest refusal is still cached")
	}
	for i := range 150 {
		c.put(key(fmt.Sprint("ok", i)), entry{v: &Verified{}, until: now.Add(time.Hour)})
	}
	if n := len(c.accepted.entries); n != 100 {
		t.Errorf("accepted answers kept: %d, want the size 100", n)
	}
	if _, ok := c.get(key("good"), now); ok {
		t.Errorf("the oldest accepted answer survived 150 newer ones in a ring of 100")
	}
	if _, ok := c.get(key("ok149"), now.Add(2*time.Hour)); ok {
		t.Errorf("an expired answer was served")
	}
}
