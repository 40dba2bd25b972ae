package version

// Version is overridden at link time: -ldflags "-X github.com/kaopu/kaopu/internal/version.Version=v1.2.3".
var Version = "dev"
