package fleet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
)

// Chromium is the headless browser the dashboard is tested with: Debian's
// chromium package.
const Chromium = "chromium"

// Browse loads url in headless Chromium and returns the DOM after the page
// loaded; with a non-empty screenshot it also writes a PNG of width x height
// there. Chromium may reach only loopback: every other request goes to a
// proxy that does not exist, and its background services are off.
func Browse(ctx context.Context, url, screenshot string, width, height int) (string, error) {
	profile, err := os.MkdirTemp("", "lifeboat-chromium-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(profile)
	args := []string{
		"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir=" + profile, "--no-first-run", "--no-default-browser-check",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
		"--no-pings", "--metrics-recording-only", "--dns-prefetch-disable",
		// Loopback bypasses the proxy; everything else goes nowhere.
		"--proxy-server=http://127.0.0.1:9",
		"--window-size=" + strconv.Itoa(width) + "," + strconv.Itoa(height),
	}
	dom, err := exec.CommandContext(ctx, Chromium, append(args, "--dump-dom", url)...).Output()
	if err != nil {
		return "", fmt.Errorf("chromium --dump-dom %s: %w", url, stderrOf(err))
	}
	if screenshot != "" {
		cmd := exec.CommandContext(ctx, Chromium, append(args, "--screenshot="+screenshot, url)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("chromium --screenshot %s: %w: %s", url, err, out)
		}
	}
	return string(dom), nil
}

func stderrOf(err error) error {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, ee.Stderr)
	}
	return err
}

// LockedBuffer is an output one goroutine writes (a command's stdout) while
// another reads it.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
