package server

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kaopu/kaopu/internal/config"
	"github.com/kaopu/kaopu/internal/store"
	"github.com/kaopu/kaopu/internal/store/sqlite"
)

// Setting keys kept in the store.
const (
	settingDomain    = "domain"
	settingAdminHash = "admin_password_hash"
)

// OpenStore opens the store named by cfg.DB, or SQLite in cfg.Data.
func OpenStore(ctx context.Context, cfg config.Config) (*sqlite.Store, error) {
	switch {
	case strings.HasPrefix(cfg.DB, "postgres://"), strings.HasPrefix(cfg.DB, "postgresql://"):
		return nil, errors.New("db: PostgreSQL is not supported yet by this build; use SQLite (leave db empty)")
	case cfg.DB != "":
		path := strings.TrimPrefix(strings.TrimPrefix(cfg.DB, "sqlite:"), "file:")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("db: %w", err)
		}
		return sqlite.Open(ctx, path)
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return sqlite.Open(ctx, filepath.Join(cfg.Data, "kaopu.db"))
}

// Realm decides the SIP domain: the configured one, else what the server
// stored on its first run, else the host name.
func Realm(ctx context.Context, cfg config.Config, st store.Settings) string {
	if cfg.Domain != "" {
		return cfg.Domain
	}
	if d, err := st.GetSetting(ctx, settingDomain); err == nil && d != "" {
		return d
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

// EnsureRealm is Realm for the admin commands: when no domain is stored
// yet, it stores the one it decided, so later commands and the server's
// first start hash passwords for the same realm.
func EnsureRealm(ctx context.Context, cfg config.Config, st store.Settings) (string, error) {
	realm := Realm(ctx, cfg, st)
	if _, err := st.GetSetting(ctx, settingDomain); errors.Is(err, store.ErrNotFound) {
		return realm, st.PutSetting(ctx, settingDomain, realm)
	} else if err != nil {
		return "", err
	}
	return realm, nil
}

// ensureAdmin creates the admin password on first run and returns it
// (empty when it existed already). Only a PBKDF2 hash is stored.
func ensureAdmin(ctx context.Context, st store.Settings) (string, error) {
	if _, err := st.GetSetting(ctx, settingAdminHash); err == nil {
		return "", nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	raw := make([]byte, 15)
	rand.Read(raw)
	pw := base64.RawURLEncoding.EncodeToString(raw)
	h, err := HashPassword(pw)
	if err != nil {
		return "", err
	}
	return pw, st.PutSetting(ctx, settingAdminHash, h)
}

const pbkdf2Iter = 210000

// HashPassword hashes an admin password with PBKDF2-SHA256.
func HashPassword(pw string) (string, error) {
	salt := make([]byte, 16)
	rand.Read(salt)
	key, err := pbkdf2.Key(sha256.New, pw, salt, pbkdf2Iter, 32)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("pbkdf2-sha256$%d$%s$%s", pbkdf2Iter,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}
