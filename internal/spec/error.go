package spec

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrEmpty is the error of a kiln.yaml that holds no document.
var ErrEmpty = errors.New("empty")

// Error is one problem in kiln.yaml: "kiln.yaml:12: contents.files[1].mode: ...".
type Error struct {
	File  string // kiln.yaml as named to Load or Parse
	Line  int    // 1-based; 0 when the problem has no line, such as an empty file
	Field string // "contents.files[1].mode"; empty for the document itself
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in one kiln.yaml, sorted by line.
type Errors []*Error

// Error returns one line per problem.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is and errors.As look at every problem.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// err returns nil, the only problem as an *Error, or all of them sorted by line.
func (es Errors) err() error {
	switch len(es) {
	case 0:
		return nil
	case 1:
		return es[0]
	}
	slices.SortStableFunc(es, func(a, b *Error) int { return a.Line - b.Line })
	return es
}

// At returns an error about the value at p, for later steps that find a problem with it
// (a binary not in PATH, a conflict between two entries), so that it reads like Parse's.
func (s *Spec) At(p Pos, err error) *Error {
	return &Error{File: s.File, Line: p.Line, Field: p.Field, Err: err}
}
