// Package spec parses and validates kiln.yaml, the declarative description of an image.
//
// Every value remembers the line it was written on (a [Pos]), so errors, here and in
// later steps, read "kiln.yaml:12: contents.files[1].mode: ...". Parse reports every
// problem it finds, not only the first, as [Errors].
//
// A kiln.yaml may hold stages, images built first for the image it names to use; each is a
// *Spec of its own in [Spec.Stages], in the order they must be built, with its uses checked
// (a from: naming no stage, stages using each other in a cycle) like any other value.
//
// spec reads kiln.yaml and stats the host files it names as sources; it never reads,
// writes or runs anything else on the host. The schema is documented in docs/kiln.yaml.md.
//
//	s, err := spec.Load("kiln.yaml")
//	if err != nil {
//		return err // *spec.Error or spec.Errors, one line per problem
//	}
package spec
