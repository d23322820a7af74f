// Package regmap is the Modbus register-map engine of the modbus
// connector, apart from any I/O so that it can be tested and fuzzed on
// its own: it parses field declarations ("holding 10 float32 scale 0.1"),
// checks a map (overlaps, widths, address range), plans batched reads
// (contiguous fields in one request, within the protocol's limits) and
// writes, and converts between registers or bits and JSON values.
//
// A field lives in one of the four Modbus tables (coils, discrete inputs,
// holding registers, input registers) at a 0-based address. Coils and
// discrete inputs hold one bit; a register field has a type (int16,
// uint16, int32, uint32, int64, uint64, float32, float64, string) that
// fixes how many 16-bit registers it spans, a byte order within each
// register and a word order across registers, and an optional scale and
// offset (value = raw*scale + offset).
package regmap
