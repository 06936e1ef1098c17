package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// An import file is what people export a users collection into: mongoexport's default
// (JSON lines, one document per line, in MongoDB Extended JSON), mongoexport --jsonArray,
// or JSON.stringify of find().toArray() in an app. This file reads all of them into users,
// and reports every bad record by the line it starts on, so an operator fixes the file in
// one pass instead of one error per run.

// ImportRecord is one user read from an import file and the line its record starts on.
type ImportRecord struct {
	Line int // 1-based
	// Element is the record's 1-based position in a JSON array, 0 in JSON lines: mongoexport
	// --jsonArray writes the whole array on one line, where the line alone names nothing.
	Element int
	User    User
}

// ImportProblem is what is wrong with one record of an import file.
type ImportProblem struct {
	Line    int    // 1-based line the record starts on
	Element int    // 1-based position in a JSON array; 0 in JSON lines or for the file itself
	Record  string // what is known of the record (`_id "…", username "…"`); may be empty
	Err     error  // wraps ErrDuplicate when the record collides with another or a stored user
}

func (p ImportProblem) String() string {
	where := position(p.Line, p.Element)
	if p.Record == "" {
		return fmt.Sprintf("%s: %v", where, p.Err)
	}
	return fmt.Sprintf("%s (%s): %v", where, p.Record, p.Err)
}

// ImportError lists every bad record of an import file, in line order. When it is returned
// nothing has been imported.
type ImportError struct {
	Problems []ImportProblem
}

// maxPrintedProblems bounds what Error prints: a file in the wrong shape has a problem on
// every line, and the first hundred say what is wrong. Problems holds all of them.
const maxPrintedProblems = 100

func (e *ImportError) Error() string {
	var b strings.Builder
	n := len(e.Problems)
	fmt.Fprintf(&b, "%d bad %s:", n, pluralWord(n, "record", "records"))
	for i, p := range e.Problems {
		if i == maxPrintedProblems {
			fmt.Fprintf(&b, "\n  … and %d more", n-i)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Unwrap gives every problem's error, so errors.Is(err, ErrDuplicate) holds when any
// record is a duplicate.
func (e *ImportError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p.Err
	}
	return errs
}

// position names where a record is: "line 3", or "line 1, record 4" in an array.
func position(line, element int) string {
	if element > 0 {
		return fmt.Sprintf("line %d, record %d", line, element)
	}
	return fmt.Sprintf("line %d", line)
}

// recordErrors are the problems of one record, printed on its one line.
type recordErrors []error

func (r recordErrors) Error() string {
	parts := make([]string, len(r))
	for i, err := range r {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}

func (r recordErrors) Unwrap() []error { return r }

// problemFor turns a record's errors into one problem; a single error is kept as it is.
func problemFor(r ImportRecord, errs []error) ImportProblem {
	p := ImportProblem{Line: r.Line, Element: r.Element, Record: describeRecord(r.User), Err: recordErrors(errs)}
	if len(errs) == 1 {
		p.Err = errs[0]
	}
	return p
}

// describeRecord names a record by what is known of it. A username made from the e-mail
// is named as the e-mail, which is what the file holds.
func describeRecord(u User) string {
	var parts []string
	if u.ID != "" {
		parts = append(parts, fmt.Sprintf("_id %q", u.ID))
	}
	switch {
	case u.Email != "" && u.Username == EmailKey(u.Email):
		parts = append(parts, fmt.Sprintf("email %q", u.Email))
	case u.Username != "":
		parts = append(parts, fmt.Sprintf("username %q", u.Username))
	}
	return strings.Join(parts, ", ")
}

// ParseUserImport reads an import file: a JSON array when its first non-space byte is
// "[", JSON lines (one document per line, blank lines allowed) otherwise.
//
// A record is keyed by username or, without one, by email: its username is then the
// e-mail lower-cased (EmailKey), so the store's unique username stays filled, users list
// shows who it is, and both users.findOne({email}) and users.findOne({username: email})
// find it. _id is {"$oid": "…"} or a 24-hex string (lower-cased); without one the store
// generates an ID. name, email, role and password (a bcrypt hash; plaintext is refused)
// are optional strings; a user without a password cannot sign in with credentials.
// createdAt ({"$date": …} or an ISO 8601 string) becomes CreatedAt. Every other field is
// kept in Extra with MongoDB Extended JSON, relaxed or canonical, turned into plain JSON:
// $oid to its hex string, $date to an ISO 8601 string in UTC with milliseconds,
// $numberInt, $numberLong and $numberDouble to numbers. Other $ types ($binary,
// $numberDecimal, …) are refused, as are numbers a JSON number cannot hold exactly.
//
// Two records with the same _id, username or e-mail (compared case-insensitively) are
// refused. On any problem it returns an *ImportError listing every bad record with the
// line it starts on (and, in an array, its place), and no records.
func ParseUserImport(data []byte) ([]ImportRecord, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a byte order mark some editors write
	body := bytes.TrimLeft(data, jsonSpace)
	if len(body) == 0 {
		return nil, errors.New("no user records: the file is empty")
	}
	var raws []rawRecord
	var problems []ImportProblem
	if body[0] == '[' {
		raws, problems = splitJSONArray(data)
	} else {
		raws, problems = splitJSONLines(data)
	}

	records := make([]ImportRecord, len(raws))
	errs := make([][]error, len(raws))
	for i, r := range raws {
		records[i] = ImportRecord{Line: r.line, Element: r.element}
		records[i].User, errs[i] = decodeUserRecord(r.raw)
	}
	for i, dupErrs := range duplicatesInFile(records) {
		errs[i] = append(errs[i], dupErrs...)
	}
	for i, r := range records {
		if len(errs[i]) > 0 {
			problems = append(problems, problemFor(r, errs[i]))
		}
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b ImportProblem) int {
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return a.Element - b.Element
		})
		return nil, &ImportError{Problems: problems}
	}
	return records, nil
}

// DecodeUserExport parses an import file as ParseUserImport does and returns its users in
// file order.
func DecodeUserExport(data []byte) ([]User, error) {
	records, err := ParseUserImport(data)
	if err != nil {
		return nil, err
	}
	users := make([]User, len(records))
	for i, r := range records {
		users[i] = r.User
	}
	return users, nil
}

// ImportUserRecords stores the records' users in s, all or none (ImportUsers is atomic).
// When some collide with stored users, it returns an *ImportError naming every one of them
// by its line: ImportUsers alone stops at the first and knows no lines.
func ImportUserRecords(ctx context.Context, s Users, records []ImportRecord) error {
	users := make([]User, len(records))
	for i, r := range records {
		users[i] = r.User
	}
	err := s.ImportUsers(ctx, users)
	if errors.Is(err, ErrDuplicate) {
		// Only now read the directory: an import that fits costs no extra read.
		var ie *ImportError
		if cerr := checkAgainstStore(ctx, s, records); errors.As(cerr, &ie) {
			return ie
		}
	}
	return err
}

// checkAgainstStore reports every record whose _id, username or e-mail is already taken.
// It reads the directory once rather than three lookups per record, which would be three
// round trips each on Redis.
func checkAgainstStore(ctx context.Context, s Users, records []ImportRecord) error {
	stored, err := s.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("read stored users: %w", err)
	}
	byID := make(map[string]User, len(stored))
	byUsername := make(map[string]User, len(stored))
	byEmail := make(map[string]User, len(stored))
	for _, u := range stored {
		byID[u.ID] = u
		byUsername[u.Username] = u
		if u.Email != "" {
			byEmail[EmailKey(u.Email)] = u
		}
	}
	var problems []ImportProblem
	for _, r := range records {
		var errs []error
		u := r.User
		if got, ok := byID[u.ID]; ok && u.ID != "" {
			errs = append(errs, fmt.Errorf("_id %q: %w (user %q)", u.ID, ErrDuplicate, got.Username))
		}
		if got, ok := byUsername[u.Username]; ok {
			errs = append(errs, fmt.Errorf("username %q: %w (user %s)", u.Username, ErrDuplicate, got.ID))
		}
		if got, ok := byEmail[EmailKey(u.Email)]; ok && u.Email != "" {
			errs = append(errs, fmt.Errorf("email %q: %w (user %q)", u.Email, ErrDuplicate, got.Username))
		}
		if len(errs) > 0 {
			problems = append(problems, problemFor(r, errs))
		}
	}
	if len(problems) > 0 {
		return &ImportError{Problems: problems}
	}
	return nil
}

// duplicatesInFile returns, by record index, the collisions of each record with an
// earlier one of the file.
func duplicatesInFile(records []ImportRecord) map[int][]error {
	seen := map[string]string{} // field "\x00" key -> position of its first record
	dups := map[int][]error{}
	for i, r := range records {
		u := r.User
		for _, k := range [...]struct{ field, value, key string }{
			{"_id", u.ID, u.ID},
			{"username", u.Username, u.Username},
			{"email", u.Email, EmailKey(u.Email)},
		} {
			if k.key == "" {
				continue
			}
			idx := k.field + "\x00" + k.key
			if first, dup := seen[idx]; dup {
				dups[i] = append(dups[i], fmt.Errorf("%s %q: %w (%s)", k.field, k.value, ErrDuplicate, first))
				continue
			}
			seen[idx] = position(r.Line, r.Element)
		}
	}
	return dups
}

// jsonSpace is JSON's white space.
const jsonSpace = " \t\r\n"

// rawRecord is one record's JSON, the line it starts on and its place in an array.
type rawRecord struct {
	line, element int
	raw           []byte
}

// splitJSONLines cuts JSON lines into records. A line that is not JSON is a problem of its
// own and does not stop the others from being read.
func splitJSONLines(data []byte) ([]rawRecord, []ImportProblem) {
	var raws []rawRecord
	var problems []ImportProblem
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.Trim(line, jsonSpace)
		if len(line) == 0 {
			continue
		}
		var v json.RawMessage
		if err := json.Unmarshal(line, &v); err != nil {
			problems = append(problems, ImportProblem{Line: i + 1, Err: fmt.Errorf("invalid JSON: %w (JSON lines hold one whole document per line)", err)})
			continue
		}
		raws = append(raws, rawRecord{line: i + 1, raw: line})
	}
	return raws, problems
}

// splitJSONArray cuts a JSON array into its elements. A syntax error ends the reading (the
// rest of an array cannot be told apart); the elements before it are still checked.
func splitJSONArray(data []byte) ([]rawRecord, []ImportProblem) {
	lines := newLineIndex(data)
	syntax := func(off int, err error) []ImportProblem {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			off = int(se.Offset)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("unexpected end of file: the array is not closed")
		}
		return []ImportProblem{{Line: lines.at(off), Err: fmt.Errorf("invalid JSON: %w; the rest of the array cannot be read", err)}}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // the "[" the caller saw
		return nil, syntax(0, err)
	}
	var raws []rawRecord
	for dec.More() {
		start := skipSeparator(data, int(dec.InputOffset()))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return raws, syntax(start, err)
		}
		raws = append(raws, rawRecord{line: lines.at(start), element: len(raws) + 1, raw: raw})
	}
	if _, err := dec.Token(); err != nil { // "]"
		return raws, syntax(int(dec.InputOffset()), err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		off := skipSeparator(data, int(dec.InputOffset()))
		return raws, []ImportProblem{{Line: lines.at(off), Err: errors.New("invalid JSON: more after the closing ] of the array")}}
	}
	return raws, nil
}

// skipSeparator returns the offset of the next value at or after off: past white space
// and one comma.
func skipSeparator(data []byte, off int) int {
	for off < len(data) && strings.IndexByte(jsonSpace, data[off]) >= 0 {
		off++
	}
	if off < len(data) && data[off] == ',' {
		off++
	}
	for off < len(data) && strings.IndexByte(jsonSpace, data[off]) >= 0 {
		off++
	}
	return off
}

// lineIndex turns byte offsets into 1-based line numbers.
type lineIndex []int // offsets of the newlines

func newLineIndex(data []byte) lineIndex {
	var nl lineIndex
	for i, c := range data {
		if c == '\n' {
			nl = append(nl, i)
		}
	}
	return nl
}

func (l lineIndex) at(off int) int { return sort.SearchInts(l, off) + 1 }

// decodeUserRecord reads one record. It returns what it could read of the user, so that a
// bad record can still be named and checked for duplicates, and every problem found.
func decodeUserRecord(raw []byte) (User, []error) {
	var u User
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return u, []error{errors.New("want a JSON object (one user document)")}
	}
	var errs []error
	if v, ok := fields["_id"]; ok {
		id, err := decodeObjectID(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("_id: %w", err))
		}
		u.ID = id
	}
	strs := map[string]string{}
	// identityErr: a username or e-mail is there but unusable, and already reported.
	identityErr := false
	for _, name := range [...]string{"username", "email", "name", "role", "password"} {
		s, err := optionalString(fields, name)
		if err != nil {
			errs = append(errs, err)
			identityErr = identityErr || name == "username" || name == "email"
		}
		strs[name] = s
	}
	u.Name, u.Role = strs["name"], strs["role"]
	if e := strs["email"]; e != "" {
		u.Email = e
		if !strings.Contains(e, "@") {
			errs = append(errs, fmt.Errorf("email %q: not an e-mail address", e))
			identityErr = true
		}
	}
	switch {
	case strs["username"] != "":
		u.Username = strs["username"]
	case identityErr:
	case u.Email != "":
		u.Username = EmailKey(u.Email)
	default:
		errs = append(errs, errors.New("neither username nor email: a record needs one to sign in with"))
	}
	if p := strs["password"]; p != "" {
		if err := CheckBcryptHash(p); err != nil {
			errs = append(errs, fmt.Errorf("password: %w", err))
		}
		u.PasswordHash = p
	}
	if v, ok := fields["createdAt"]; ok {
		t, err := decodeDate(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("createdAt: %w", err))
		}
		u.CreatedAt = t
	}

	keys := make([]string, 0, len(fields))
	for k := range fields {
		if !documentFields[k] && k != "createdAt" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys) // problems in a stable order
	for _, k := range keys {
		if strings.HasPrefix(k, "$") {
			errs = append(errs, fmt.Errorf("field %q: names starting with $ are not fields of a document", k))
			continue
		}
		v, err := decodeExtendedJSON(fields[k], k)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if u.Extra == nil {
			u.Extra = map[string]any{}
		}
		u.Extra[k] = v
	}
	if len(errs) == 0 {
		if err := ValidateUser(u); err != nil {
			errs = append(errs, err)
		}
	}
	return u, errs
}

// optionalString reads a string field; missing and null both give "".
func optionalString(fields map[string]json.RawMessage, name string) (string, error) {
	v, ok := fields[name]
	if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("%s: want a string", name)
	}
	return s, nil
}

// isoMillis is how a date is kept: what JavaScript's Date.prototype.toISOString writes.
const isoMillis = "2006-01-02T15:04:05.000Z"

// maxExactInteger is 2^53: beyond it a JSON number (a double, in a script) skips integers.
const maxExactInteger = 1 << 53

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
