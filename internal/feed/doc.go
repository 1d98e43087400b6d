// Package feed turns input files into producer records for `ksp put`: one
// record per delimited chunk (a line by default) or per whole input, each
// with a partition key from a [Keyer] (fixed, template, JSON field or
// random), and puts them through a producer.Producer.
//
// Guarantees:
//   - A chunk whose key cannot be made (malformed JSON, a missing field) is
//     an [*ItemError] naming its input and line (chunk) number. With
//     [Options.SkipBad] it is reported and skipped; otherwise [Put] checks
//     every chunk before putting any, so a bad chunk puts nothing (the
//     input is then held in memory until the check is done).
//   - Put returns once every record it accepted has its result: the
//     [Summary] counts those put and those failed, and Put fails when any
//     did.
package feed
