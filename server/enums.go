package server

// oneOf is validator.enum for the typed enumerations of package kds.
func oneOf[T ~string](v *validator, field string, s T, values []T) {
	names := make([]string, len(values))
	for i, x := range values {
		names[i] = string(x)
	}
	v.enum(field, string(s), names...)
}
