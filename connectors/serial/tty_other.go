//go:build !linux

package serial

import (
	"errors"
	"os"
)

func setRaw(*os.File, int) error {
	return errors.New("setting the baud rate is only supported on Linux; configure the port with stty")
}
