//go:build !linux

package cli

import (
	"errors"
	"os"
)

// echoOff is not implemented here: the password prompt echoes.
func echoOff(*os.File) (func(), error) { return nil, errors.New("not supported") }

func isTerminal(*os.File) bool { return false }
