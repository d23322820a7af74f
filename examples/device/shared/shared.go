// Package shared holds the expression text used by both sides of the
// device example: the device pipeline (device/expr under TinyGo) and the
// host pipeline (expr-lang), so one filter definition runs in both places.
package shared

// HotFilter keeps readings above 25 °C from devices named "d-...".
const HotFilter = `temp > 25.0 && device startsWith "d-"`

// AlertMap shapes an alert on the device.
const AlertMap = `{"device": device, "temp": temp, "seq": seq, "alert": true}`
