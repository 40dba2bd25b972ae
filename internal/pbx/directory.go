package pbx

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

// Store is what the directory reads.
type Store interface {
	ListGroups(ctx context.Context) ([]store.Group, error)
	ListMenus(ctx context.Context) ([]store.Menu, error)
	PBXVersion(ctx context.Context) (int64, error)
}

// Directory is the groups and menus of the store, in memory.
type Directory struct {
	st  Store
	log *slog.Logger

	mu      sync.Mutex // serializes Load
	version int64
	snap    atomic.Pointer[snapshot]
}

type snapshot struct {
	groups map[string]store.Group
	menus  map[string]*Menu
}

// NewDirectory makes an empty directory; Load fills it.
func NewDirectory(st Store, log *slog.Logger) *Directory {
	d := &Directory{st: st, log: log}
	d.snap.Store(&snapshot{groups: map[string]store.Group{}, menus: map[string]*Menu{}})
	return d
}

// Load reads groups and menus when the store's version moved.
func (d *Directory) Load(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.st.PBXVersion(ctx)
	if err != nil || v == d.version {
		return err
	}
	groups, err := d.st.ListGroups(ctx)
	if err != nil {
		return err
	}
	menus, err := d.st.ListMenus(ctx)
	if err != nil {
		return err
	}
	s := &snapshot{groups: make(map[string]store.Group, len(groups)), menus: make(map[string]*Menu, len(menus))}
	for _, g := range groups {
		s.groups[g.Number] = g
	}
	for _, sm := range menus {
		prompt, err := decodePrompt(sm.Prompt)
		if err != nil {
			d.log.Warn("IVR menu ignored: bad prompt", "menu", sm.Number, "error", err)
			continue
		}
		s.menus[sm.Number] = &Menu{Number: sm.Number, Prompt: prompt, Options: sm.Options, Timeout: sm.Timeout,
			Retries: sm.Retries, Default: sm.Default, ExtensionDialing: sm.ExtensionDialing}
	}
	d.version = v
	d.snap.Store(s)
	d.log.Info("ring groups and IVR menus loaded", "groups", len(s.groups), "menus", len(s.menus))
	return nil
}

// Run reloads every poll until ctx ends.
func (d *Directory) Run(ctx context.Context, poll time.Duration) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := d.Load(ctx); err != nil && ctx.Err() == nil {
				d.log.Warn("reading ring groups and menus failed", "error", err)
			}
		}
	}
}

// Group returns the ring group of a number.
func (d *Directory) Group(number string) (store.Group, bool) {
	g, ok := d.snap.Load().groups[number]
	return g, ok
}

// Menu returns the IVR menu of a number.
func (d *Directory) Menu(number string) (*Menu, bool) {
	m, ok := d.snap.Load().menus[number]
	return m, ok
}
