package voicemail

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// PINs are a few digits: no hash makes a stolen database safe on its own,
// but a salted, iterated one (RFC 8018 PBKDF2) makes each guess cost the
// same per mailbox; online guessing is bounded by MaxAttempts per call
// and by the bans of the source.
const (
	pinIterations = 10_000
	pinSaltBytes  = 16
	pinScheme     = "pbkdf2-sha256"
)

// HashPIN returns the stored form of a mailbox's PIN,
// "pbkdf2-sha256$ROUNDS$SALT$HASH"; the user's name is part of the input,
// so a hash copied to another mailbox does not match there.
func HashPIN(user, pin string) (string, error) {
	salt := make([]byte, pinSaltBytes)
	rand.Read(salt)
	return hashPIN(user, pin, salt, pinIterations)
}

func hashPIN(user, pin string, salt []byte, iter int) (string, error) {
	key, err := pbkdf2.Key(sha256.New, user+":"+pin, salt, iter, sha256.Size)
	if err != nil {
		return "", err
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("%s$%d$%s$%s", pinScheme, iter, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// CheckPIN reports whether pin is the one hashed; an empty hash (no PIN
// set) matches nothing.
func CheckPIN(user, pin, hash string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 4 || parts[0] != pinScheme || pin == "" {
		return false
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1 || iter > 1_000_000 {
		return false
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	got, err := hashPIN(user, pin, salt, iter)
	return err == nil && subtle.ConstantTimeCompare([]byte(got), []byte(hash)) == 1
}

// ValidPIN reports whether a PIN is acceptable: 4 to 12 digits.
func ValidPIN(pin string) bool {
	if len(pin) < 4 || len(pin) > 12 {
		return false
	}
	return strings.Trim(pin, "0123456789") == ""
}
