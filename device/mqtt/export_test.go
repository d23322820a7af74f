package mqtt

// AppendRemLen exposes the variable byte integer encoder to the tests.
var AppendRemLen = appendRemLen
