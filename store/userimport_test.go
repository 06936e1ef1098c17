package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"
	"github.com/callgate/callgate/store"
	"github.com/callgate/callgate/store/bolt"
	"github.com/callgate/callgate/store/redis"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "import", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseUserImportFixtures(t *testing.T) {
	tests := []struct {
		file string
		want []store.ImportRecord
	}{
		{"mongoexport.json", []store.ImportRecord{ // mongoexport's default: JSON lines, relaxed Extended JSON
			{Line: 1, User: store.User{
				ID: "65a1f0c2e4b0a1b2c3d4e5f6", Username: "jatin", Name: "Jatin", Email: "jatin@example.com", Role: "admin", PasswordHash: hashA,
				CreatedAt: time.Date(2024, 1, 13, 8, 30, 15, 123e6, time.UTC),
				Extra:     map[string]any{"updatedAt": "2024-03-01T10:00:00.000Z", "__v": float64(0)},
			}},
			{Line: 2, User: store.User{
				ID: "65a1f0c2e4b0a1b2c3d4e5f7", Username: "alice", Name: "Alice", Email: "alice@example.com", Role: "user", PasswordHash: hashB,
				CreatedAt: time.Date(2024, 1, 14, 9, 0, 0, 500e6, time.UTC),
				Extra: map[string]any{"updatedAt": "2024-01-14T09:00:00.500Z", "__v": float64(0), "loginCount": float64(42),
					"team": "65a1f0c2e4b0a1b2c3d4e500"},
			}},
			{Line: 3, User: store.User{ // relaxed form writes dates before 1970 as $numberLong
				ID: "65a1f0c2e4b0a1b2c3d4e5f8", Username: "old", PasswordHash: hashA,
				CreatedAt: time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC),
				Extra:     map[string]any{"__v": float64(0)},
			}},
		}},
		{"canonical.json", []store.ImportRecord{ // mongoexport --jsonFormat=canonical
			{Line: 1, User: store.User{
				ID: "65a1f0c2e4b0a1b2c3d4e5f6", Username: "jatin", Email: "jatin@example.com", PasswordHash: hashA,
				CreatedAt: time.Date(2024, 1, 13, 8, 30, 15, 123e6, time.UTC),
				Extra: map[string]any{"lastLogin": "2024-03-01T10:00:00.000Z", "__v": float64(0),
					"loginCount": float64(1 << 53), "score": 4.5, "tags": []any{"a", float64(-7)}, "active": true},
			}},
		}},
		{"array.json", []store.ImportRecord{ // mongoexport --jsonArray --pretty: lines where each record starts
			{Line: 2, Element: 1, User: store.User{
				ID: "65a1f0c2e4b0a1b2c3d4e5f6", Username: "jatin", Email: "jatin@example.com", PasswordHash: hashA,
				CreatedAt: time.Date(2024, 1, 13, 8, 30, 15, 123e6, time.UTC),
			}},
			{Line: 13, Element: 2, User: store.User{ // e-mail only, createdAt as JSON.stringify writes it
				ID: "65a1f0c2e4b0a1b2c3d4e5f7", Username: "alice@example.com", Email: "Alice@Example.com",
				CreatedAt: time.Date(2024, 1, 14, 9, 0, 0, 0, time.UTC),
			}},
		}},
		{"email-only.json", []store.ImportRecord{ // a NextAuth MongoDB adapter's users: no username, no password
			{Line: 1, User: store.User{
				ID: "6600aa00bb11cc22dd33ee01", Username: "alice@example.com", Name: "Alice Liddell", Email: "Alice@Example.com",
				Extra: map[string]any{"image": "https://example.com/alice.png", "emailVerified": "2024-02-02T09:00:00.000Z"},
			}},
			{Line: 3, User: store.User{
				ID: "6600aa00bb11cc22dd33ee02", Username: "bob@example.org", Name: "Bob", Email: "bob@example.org",
				Extra: map[string]any{"image": nil, "emailVerified": nil},
			}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := store.ParseUserImport(readFixture(t, tt.file))
			if err != nil {
				t.Fatalf("ParseUserImport: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseUserImport:\n got  %+v\n want %+v", got, tt.want)
			}
		})
	}
}

// importProblems parses in, which must fail with an *ImportError, and returns its problems.
func importProblems(t *testing.T, in []byte) []store.ImportProblem {
	t.Helper()
	got, err := store.ParseUserImport(in)
	if got != nil {
		t.Errorf("ParseUserImport on error: got %d records, want none", len(got))
	}
	var ie *store.ImportError
	if !errors.As(err, &ie) {
		t.Fatalf("ParseUserImport: got %v, want an *ImportError", err)
	}
	return ie.Problems
}

// wantProblems checks that problems are exactly at lines, in order, each one's message
// containing the matching text.
func wantProblems(t *testing.T, problems []store.ImportProblem, lines []int, texts []string) {
	t.Helper()
	var gotLines []int
	for _, p := range problems {
		gotLines = append(gotLines, p.Line)
	}
	if !reflect.DeepEqual(gotLines, lines) {
		t.Fatalf("problem lines: got %v, want %v\n%v", gotLines, lines, problems)
	}
	for i, p := range problems {
		if !strings.Contains(p.String(), texts[i]) {
			t.Errorf("problem %d: got %q, want it to contain %q", i, p, texts[i])
		}
	}
}

func TestParseUserImportBrokenLines(t *testing.T) {
	problems := importProblems(t, readFixture(t, "broken.json"))
	wantProblems(t, problems, []int{3, 5, 7}, []string{
		"line 3: invalid JSON: unexpected end of JSON input",
		`line 5 (_id "65a1f0c2e4b0a1b2c3d4e5fa"): neither username nor email`,
		`line 7 (username "dave"): _id: "not-an-object-id": want 24 hex characters`,
	})
}

func TestParseUserImport(t *testing.T) {
	rec := func(line int, u store.User) store.ImportRecord { return store.ImportRecord{Line: line, User: u} }
	elem := func(line, element int, u store.User) store.ImportRecord {
		return store.ImportRecord{Line: line, Element: element, User: u}
	}
	tests := []struct {
		name string
		in   string
		want []store.ImportRecord
	}{
		{"empty array", " \n[]\n", []store.ImportRecord{}},
		{"array after a byte order mark and blank lines", "\xef\xbb\xbf\n\n  [{\"username\": \"a\"},\n {\"email\": \"b@x.org\"}]",
			[]store.ImportRecord{elem(3, 1, store.User{Username: "a"}), elem(4, 2, store.User{Username: "b@x.org", Email: "b@x.org"})}},
		{"one-line array: records told apart by their place", `[{"username": "a"}, {"username": "b"}]`,
			[]store.ImportRecord{elem(1, 1, store.User{Username: "a"}), elem(1, 2, store.User{Username: "b"})}},
		{"JSON lines with CRLF, blank and space-only lines", "\r\n{\"username\": \"a\"}\r\n   \r\n\t{\"username\": \"b\"}  \r\n",
			[]store.ImportRecord{rec(2, store.User{Username: "a"}), rec(4, store.User{Username: "b"})}},
		{"username wins over email; e-mail kept as written", `{"username": "jatin", "email": "Jatin@Example.com"}`,
			[]store.ImportRecord{rec(1, store.User{Username: "jatin", Email: "Jatin@Example.com"})}},
		{"null username falls back to email", `{"username": null, "email": "Bob@Example.com"}`,
			[]store.ImportRecord{rec(1, store.User{Username: "bob@example.com", Email: "Bob@Example.com"})}},
		{"_id string upper case, null optional fields, $2y$ hash",
			`{"_id": "65A1F0C2E4B0A1B2C3D4E5F6", "username": "bob", "name": null, "role": null, "password": "$2y$` + hashA[4:] + `", "createdAt": null}`,
			[]store.ImportRecord{rec(1, store.User{ID: "65a1f0c2e4b0a1b2c3d4e5f6", Username: "bob", PasswordHash: "$2y$" + hashA[4:]})}},
		{"$date forms: offset string, $numberLong, legacy number of milliseconds",
			`{"username": "a", "createdAt": {"$date": "2024-01-02T05:04:05.5+02:00"}, "d1": {"$date": {"$numberLong": "0"}}, "d2": {"$date": 1704164645000}, "d3": "2024-01-02T03:04:05Z"}`,
			[]store.ImportRecord{rec(1, store.User{Username: "a", CreatedAt: time.Date(2024, 1, 2, 3, 4, 5, 500e6, time.UTC),
				Extra: map[string]any{"d1": "1970-01-01T00:00:00.000Z", "d2": "2024-01-02T03:04:05.000Z", "d3": "2024-01-02T03:04:05Z"}})}},
		{"numbers: wrappers and plain, at the edges a JSON number holds",
			`{"username": "a", "i": {"$numberInt": "-2147483648"}, "l": {"$numberLong": "-9007199254740992"}, "d": {"$numberDouble": "-1.5e-7"}, "p": 9007199254740992, "f": 0.1}`,
			[]store.ImportRecord{rec(1, store.User{Username: "a", Extra: map[string]any{
				"i": float64(-2147483648), "l": float64(-(1 << 53)), "d": -1.5e-7, "p": float64(1 << 53), "f": 0.1}})}},
		{"nested Extended JSON in sub-documents and arrays",
			`{"username": "a", "accounts": [{"userId": {"$oid": "65A1F0C2E4B0A1B2C3D4E5F6"}, "at": {"$date": "2024-01-02T03:04:05Z"}}], "meta": {"n": {"$numberInt": "3"}, "plain": {"k": "v"}}}`,
			[]store.ImportRecord{rec(1, store.User{Username: "a", Extra: map[string]any{
				"accounts": []any{map[string]any{"userId": "65a1f0c2e4b0a1b2c3d4e5f6", "at": "2024-01-02T03:04:05.000Z"}},
				"meta":     map[string]any{"n": float64(3), "plain": map[string]any{"k": "v"}},
			}})}},
		{"same name and role in two records is fine", "{\"username\": \"a\", \"role\": \"user\", \"name\": \"X\"}\n{\"username\": \"b\", \"role\": \"user\", \"name\": \"X\"}",
			[]store.ImportRecord{rec(1, store.User{Username: "a", Role: "user", Name: "X"}), rec(2, store.User{Username: "b", Role: "user", Name: "X"})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := store.ParseUserImport([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseUserImport: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseUserImport:\n got  %#v\n want %#v", got, tt.want)
			}
		})
	}
}

func TestParseUserImportErrors(t *testing.T) {
	ok := func(username string) string { return `{"username": "` + username + `", "password": "` + hashA + `"}` }
	tests := []struct {
		name    string
		in      string
		lines   []int
		texts   []string
		wantDup bool
	}{
		{"record not an object", ok("a") + "\n42\nnull", []int{2, 3}, []string{"line 2: want a JSON object", "line 3: want a JSON object"}, false},
		{"array element not an object", "[\n" + ok("a") + ",\n [1]]", []int{3}, []string{"line 3, record 2: want a JSON object"}, false},
		{"username not a string, email not an address", `{"username": 7, "email": "bob"}`, []int{1},
			[]string{`username: want a string; email "bob": not an e-mail address`}, false},
		{"neither, though other fields are there", `{"name": "X", "username": null, "email": ""}`, []int{1}, []string{"neither username nor email"}, false},
		{"plaintext password, named by username", ok("a") + "\n" + `{"username": "bob", "password": "hunter22"}`, []int{2},
			[]string{`line 2 (username "bob"): password: not a bcrypt hash`}, false},
		{"bad bcrypt cost", `{"username": "bob", "password": "$2a$99$` + hashA[7:] + `"}`, []int{1}, []string{"password: not a bcrypt hash"}, false},
		{"_id a number", `{"_id": 5, "username": "bob"}`, []int{1}, []string{`_id: want {"$oid": "…"} or a string of 24 hex`}, false},
		{"$oid beside another field", `{"_id": {"$oid": "65a1f0c2e4b0a1b2c3d4e5f6", "x": 1}, "username": "bob"}`, []int{1}, []string{`_id: want {"$oid"`}, false},
		{"short $oid in Extra", `{"username": "bob", "team": {"$oid": "65a1"}}`, []int{1}, []string{`team: $oid "65a1": want 24 hex characters`}, false},
		{"unknown wrapper", `{"username": "bob", "avatar": {"$binary": {"base64": "AA==", "subType": "00"}}}`, []int{1},
			[]string{"avatar: Extended JSON type $binary is not supported"}, false},
		{"$numberDecimal refused, not rounded", `{"username": "bob", "balance": {"$numberDecimal": "0.1"}}`, []int{1},
			[]string{"balance: Extended JSON type $numberDecimal is not supported"}, false},
		{"unknown wrapper deep inside", `{"username": "bob", "a": [{"b": {"$regularExpression": {"pattern": "x", "options": ""}}}]}`, []int{1},
			[]string{"a[0].b: Extended JSON type $regularExpression"}, false},
		{"wrapper with other fields", `{"username": "bob", "n": {"$numberInt": "1", "x": 2}}`, []int{1}, []string{`n: {"$numberInt": …} with other fields`}, false},
		{"$ field at the top", `{"username": "bob", "$set": {"role": "admin"}}`, []int{1}, []string{`field "$set": names starting with $`}, false},
		{"NaN", `{"username": "bob", "x": {"$numberDouble": "NaN"}}`, []int{1}, []string{`x: $numberDouble "NaN": want a finite number`}, false},
		{"-Infinity", `{"username": "bob", "x": {"$numberDouble": "-Infinity"}}`, []int{1}, []string{`$numberDouble "-Infinity"`}, false},
		{"$numberInt beyond 32 bits", `{"username": "bob", "x": {"$numberInt": "2147483648"}}`, []int{1}, []string{"not a 32-bit integer"}, false},
		{"$numberInt not a string", `{"username": "bob", "x": {"$numberInt": 1}}`, []int{1}, []string{"x: $numberInt: want a string"}, false},
		{"$numberLong beyond 2^53", `{"username": "bob", "x": {"$numberLong": "9007199254740993"}}`, []int{1}, []string{"x: $numberLong: 9007199254740993: beyond ±2^53"}, false},
		{"plain integer beyond 2^53", `{"username": "bob", "x": 9007199254740993}`, []int{1}, []string{"x: 9007199254740993: beyond ±2^53"}, false},
		{"createdAt not a date", `{"username": "bob", "createdAt": "yesterday"}`, []int{1}, []string{`createdAt: "yesterday": not an ISO 8601 date`}, false},
		{"createdAt a number", `{"username": "bob", "createdAt": 1704164645000}`, []int{1}, []string{`createdAt: want {"$date": …} or an ISO 8601 string`}, false},
		{"date past year 9999", `{"username": "bob", "createdAt": {"$date": {"$numberLong": "253402300800000"}}}`, []int{1}, []string{"date in year 10000"}, false},
		{"$date of a boolean", `{"username": "bob", "seen": {"$date": true}}`, []int{1}, []string{"seen: $date: want an ISO 8601 string"}, false},
		{"username too long", `{"username": "` + strings.Repeat("x", 257) + `"}`, []int{1}, []string{"username: longer than 256 bytes"}, false},
		{"duplicate username, reported with both lines", ok("bob") + "\n" + ok("a") + "\n" + ok("bob"), []int{3},
			[]string{`line 3 (username "bob"): username "bob": already exists (line 1)`}, true},
		{"duplicate e-mail in another case", "{\"username\": \"a\", \"email\": \"X@Example.com\"}\n{\"email\": \"x@example.COM\"}", []int{2},
			[]string{`email "x@example.COM": already exists (line 1)`}, true},
		{"e-mail-only record whose username is taken", "{\"username\": \"x@example.com\"}\n\n{\"email\": \"X@example.com\"}", []int{3},
			[]string{`line 3 (email "X@example.com"): username "x@example.com": already exists (line 1)`}, true},
		{"duplicate _id as string and $oid", `[{"_id": "65a1f0c2e4b0a1b2c3d4e5f6", "username": "a"},` + "\n" + `{"_id": {"$oid": "65A1F0C2E4B0A1B2C3D4E5F6"}, "username": "b"}]`, []int{2},
			[]string{`line 2, record 2 (_id "65a1f0c2e4b0a1b2c3d4e5f6", username "b"): _id "65a1f0c2e4b0a1b2c3d4e5f6": already exists (line 1, record 1)`}, true},
		{"one-line array: duplicates named by their place", `[{"username": "a"}, {"username": "b"}, {"email": "A@x.org"}, {"username": "b"}]`, []int{1},
			[]string{`line 1, record 4 (username "b"): username "b": already exists (line 1, record 2)`}, true},
		{"every problem of a record on its line", `{"_id": "x", "username": "a", "password": "p", "x": {"$numberDouble": "NaN"}}`, []int{1},
			[]string{`_id: "x": want 24 hex characters; password: not a bcrypt hash; x: $numberDouble`}, false},
		{"array: bad records before a syntax error are reported too", "[\n" + `{"username": 1},` + "\n" + ok("a") + "\n" + ok("b") + "]", []int{2, 4},
			[]string{"line 2, record 1: username: want a string", "line 4: invalid JSON: expected comma after array element; the rest of the array cannot be read"}, false},
		{"array not closed", "[\n" + ok("a") + ",\n" + ok("b") + "\n", []int{3}, []string{"unexpected end of file: the array is not closed"}, false},
		{"array then more", "[" + ok("a") + "]\n\n" + ok("b"), []int{3}, []string{"more after the closing ] of the array"}, false},
		{"JSON lines: a pretty-printed document", "{\n  \"username\": \"a\"\n}", []int{1, 2, 3}, []string{"invalid JSON", "invalid JSON", "invalid JSON"}, false},
		{"JSON lines: two documents on one line", ok("a") + " " + ok("b"), []int{1}, []string{"line 1: invalid JSON: invalid character '{' after top-level value"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems := importProblems(t, []byte(tt.in))
			wantProblems(t, problems, tt.lines, tt.texts)
			_, err := store.ParseUserImport([]byte(tt.in))
			if got := errors.Is(err, store.ErrDuplicate); got != tt.wantDup {
				t.Errorf("errors.Is(err, ErrDuplicate): got %v, want %v (%v)", got, tt.wantDup, err)
			}
		})
	}

	for _, in := range []string{"", " \n\r\n\t", "\xef\xbb\xbf"} {
		if _, err := store.ParseUserImport([]byte(in)); err == nil || !strings.Contains(err.Error(), "the file is empty") {
			t.Errorf("ParseUserImport(%q): got %v, want an error saying the file is empty", in, err)
		}
	}
}

func TestImportErrorMessage(t *testing.T) {
	var b strings.Builder
	for range 150 {
		b.WriteString("{\"name\": \"x\"}\n")
	}
	problems := importProblems(t, []byte(b.String()))
	if len(problems) != 150 {
		t.Fatalf("problems: got %d, want 150 (one per line)", len(problems))
	}
	msg := (&store.ImportError{Problems: problems}).Error()
	lines := strings.Split(msg, "\n")
	if lines[0] != "150 bad records:" || len(lines) != 102 || lines[101] != "  … and 50 more" || lines[100] != "  line 100: neither username nor email: a record needs one to sign in with" {
		t.Errorf("message: got %d lines, first %q, last two %q; want a count, 100 problems and \"… and 50 more\"", len(lines), lines[0], lines[len(lines)-2:])
	}
	one := (&store.ImportError{Problems: problems[:1]}).Error()
	if want := "1 bad record:\n  line 1: neither username nor email: a record needs one to sign in with"; one != want {
		t.Errorf("one problem: got %q, want %q", one, want)
	}
}

// importBackends are the stores ImportUserRecords is checked against: the embedded one and
// Redis (skipped without REDIS_URL outside CI).
func importBackends() []struct {
	name string
	open func(t *testing.T) store.Store
} {
	return []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{"bolt", func(t *testing.T) store.Store {
			s, err := bolt.Open(filepath.Join(t.TempDir(), "callgate.db"))
			if err != nil {
				t.Fatalf("bolt.Open: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
		{"redis", func(t *testing.T) store.Store {
			s, err := redis.Open(redis.Options{URL: testkit.RedisURL(t, "the import tests on Redis"), KeyPrefix: testkit.UniquePrefix("callgate-test")})
			if err != nil {
				t.Fatalf("redis.Open: %v", err)
			}
			t.Cleanup(func() {
				ctx := context.Background()
				if keys, _ := s.Client().Keys(ctx, s.Prefix()+"*").Result(); len(keys) > 0 {
					s.Client().Del(ctx, keys...)
				}
				_ = s.Close()
			})
			return s
		}},
	}
}

func TestImportUserRecords(t *testing.T) {
	ctx := context.Background()
	for _, b := range importBackends() {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			_, err := s.CreateUser(ctx, store.User{ID: "65a1f0c2e4b0a1b2c3d4e5f6", Username: "jatin", Email: "jatin@example.com"})
			if err != nil {
				t.Fatal(err)
			}

			// Every collision with the store is reported with its line; nothing is written.
			colliding, err := store.ParseUserImport([]byte(strings.Join([]string{
				`{"username": "fine"}`,
				`{"username": "jatin"}`,
				`{"email": "JATIN@example.com"}`,
				`{"_id": {"$oid": "65a1f0c2e4b0a1b2c3d4e5f6"}, "username": "other"}`,
			}, "\n")))
			if err != nil {
				t.Fatal(err)
			}
			err = store.ImportUserRecords(ctx, s, colliding)
			var ie *store.ImportError
			if !errors.As(err, &ie) || !errors.Is(err, store.ErrDuplicate) {
				t.Fatalf("ImportUserRecords: got %v, want an *ImportError wrapping ErrDuplicate", err)
			}
			wantProblems(t, ie.Problems, []int{2, 3, 4}, []string{
				`line 2 (username "jatin"): username "jatin": already exists (user 65a1f0c2e4b0a1b2c3d4e5f6)`,
				`line 3 (email "JATIN@example.com"): email "JATIN@example.com": already exists (user "jatin")`,
				`line 4 (_id "65a1f0c2e4b0a1b2c3d4e5f6", username "other"): _id "65a1f0c2e4b0a1b2c3d4e5f6": already exists (user "jatin")`,
			})
			if n, err := s.CountUsers(ctx); err != nil || n != 1 {
				t.Fatalf("users after the refused import: got %d (%v), want 1", n, err)
			}

			// The fixtures import, and an e-mail-only user is found by e-mail as a script finds it.
			records, err := store.ParseUserImport(readFixture(t, "email-only.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := store.ImportUserRecords(ctx, s, records); err != nil {
				t.Fatalf("ImportUserRecords(email-only.json): %v", err)
			}
			got, err := s.FindUser(ctx, store.UserQuery{Email: "alice@EXAMPLE.com"})
			if err != nil {
				t.Fatalf("FindUser by e-mail: %v", err)
			}
			want := records[0].User
			if got.ID != want.ID || got.Username != "alice@example.com" || got.Email != "Alice@Example.com" || !reflect.DeepEqual(got.Extra, want.Extra) {
				t.Errorf("FindUser by e-mail: got %+v, want %+v", got, want)
			}
			if byName, err := s.FindUser(ctx, store.UserQuery{Username: "alice@example.com"}); err != nil || byName.ID != want.ID {
				t.Errorf("FindUser by the username made from the e-mail: got %+v, %v", byName, err)
			}

			records, err = store.ParseUserImport(readFixture(t, "mongoexport.json"))
			if err != nil {
				t.Fatal(err)
			}
			// jatin and alice are taken by now; import the third.
			if err := store.ImportUserRecords(ctx, s, records[2:]); err != nil {
				t.Fatalf("ImportUserRecords(mongoexport.json[2:]): %v", err)
			}
			old, err := s.FindUser(ctx, store.UserQuery{Username: "old"})
			if err != nil {
				t.Fatal(err)
			}
			if !old.CreatedAt.Equal(time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC)) || old.ID != "65a1f0c2e4b0a1b2c3d4e5f8" {
				t.Errorf("imported user old: got id %s createdAt %v, want 65a1f0c2e4b0a1b2c3d4e5f8 and 1969-07-20T20:17:40Z", old.ID, old.CreatedAt)
			}
			if n, err := s.CountUsers(ctx); err != nil || n != 4 {
				t.Errorf("users after both imports: got %d (%v), want 4", n, err)
			}
		})
	}
}
