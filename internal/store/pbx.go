package store

import (
	"context"
	"time"
)

// Ring group strategies (Group.Strategy).
const (
	// StrategyRingAll rings every member's contacts at once; the first to
	// answer wins and the others get a CANCEL.
	StrategyRingAll = "ringall"
	// StrategyHunt rings the members one at a time, in order, each for
	// the group's ring time.
	StrategyHunt = "hunt"
)

// Group is a ring group: a number of ours that rings several users.
type Group struct {
	Number   string
	Members  []string // user names or extensions, in order
	Strategy string   // StrategyRingAll or StrategyHunt
	// RingTime is how long the group rings (ringall) or each member
	// rings (hunt); 0: the server's calls.no_answer_timeout.
	RingTime time.Duration
	// Fallback is where an unanswered call goes (a user, another group,
	// a menu or another application number); "": the caller gets 480.
	Fallback string
	Created  time.Time
}

// Menu is an IVR menu (an auto attendant): a number of ours that answers,
// plays a prompt and sends the caller where the key pressed says.
type Menu struct {
	Number string
	// Prompt is a WAV file: 8 kHz mono 16-bit PCM.
	Prompt []byte
	// Options maps a key ("0"-"9", "*", "#") to a destination number.
	Options map[string]string
	Timeout time.Duration // how long to wait for a key after the prompt
	Retries int           // prompts played again after an invalid key or none
	// Default is where the caller goes once the retries are used up;
	// "": the menu hangs up.
	Default string
	// ExtensionDialing lets the caller dial any user, extension or group
	// number directly instead of an option key.
	ExtensionDialing bool
	Created          time.Time
}

// PBX is storage of ring groups and IVR menus.
type PBX interface {
	// AddGroup inserts a group; ErrExists when its number is taken by a
	// group or a menu.
	AddGroup(ctx context.Context, g Group) error
	DeleteGroup(ctx context.Context, number string) error
	ListGroups(ctx context.Context) ([]Group, error)
	// AddMenu inserts a menu; ErrExists when its number is taken by a
	// group or a menu.
	AddMenu(ctx context.Context, m Menu) error
	DeleteMenu(ctx context.Context, number string) error
	ListMenus(ctx context.Context) ([]Menu, error)
	// PBXVersion changes whenever a group or a menu changes, in any
	// process.
	PBXVersion(ctx context.Context) (int64, error)
}
