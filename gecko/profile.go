package gecko

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/geckohost/geckohost/internal/proc"
)

// writeProfile writes user.js and the permissions file into dir.
func writeProfile(dir string, opts FirefoxOptions) error {
	js, err := userJS(profilePrefs(dir, opts.Prefs))
	if err != nil {
		return fmt.Errorf("write firefox profile: %w", err)
	}
	perms, err := permissionsText(opts.CameraOrigins)
	if err != nil {
		return fmt.Errorf("write firefox profile: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "user.js"), js, 0o600); err != nil {
		return fmt.Errorf("write firefox profile: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, permissionsFile), perms, 0o600); err != nil {
		return fmt.Errorf("write firefox profile: %w", err)
	}
	return nil
}

// copyProfile copies the regular files and directories of the template
// profile src into dst (which exists).
func copyProfile(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		if skipInTemplate[rel] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.Mkdir(target, 0o700)
		case d.Type().IsRegular():
			return copyFile(path, target)
		default: // symlinks (the lock), sockets: not needed
			return nil
		}
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// cleanProfile removes lock and crash state from a profile kept after exit.
func cleanProfile(dir string) {
	for name := range skipInTemplate {
		if name == "user.js" || name == permissionsFile {
			continue
		}
		_ = os.RemoveAll(filepath.Join(dir, name))
	}
}

// RemoveStaleProfiles removes, from os.TempDir(), the profiles and template
// profiles left by geckohost processes that were killed (SIGKILL leaves no
// chance to clean up; Pdeathsig takes their browsers down). Every such
// directory names the geckohost process that made it (its pid and start
// time, see internal/proc) in a geckohost-owner file; a directory is removed
// only when that process is gone from this machine, so the directories of
// a live geckohost (another serve, a test) are never touched, even once
// its pid is reused. Directories of older geckohost versions (no owner
// file) are judged by the pid in Firefox's lock or the template's owner
// file, and, without either, by an age of ten minutes. Call it when a
// server starts. It returns the directories it removed.
func RemoveStaleProfiles() ([]string, error) {
	return RemoveStaleDirs("geckohost-profile-*", "geckohost-template-*")
}

// RemoveStaleDirs is RemoveStaleProfiles for the directories of
// os.TempDir() matching patterns (filepath.Glob patterns): those whose
// owner (WriteOwner) is gone are removed. The Chromium engine uses it for
// its user data directories.
func RemoveStaleDirs(patterns ...string) ([]string, error) {
	var removed []string
	var errs []error
	for _, pattern := range patterns {
		dirs, err := filepath.Glob(filepath.Join(os.TempDir(), pattern))
		if err != nil {
			return nil, fmt.Errorf("list stale profiles: %w", err)
		}
		for _, dir := range dirs {
			if !stale(dir) {
				continue
			}
			if err := os.RemoveAll(dir); err != nil {
				errs = append(errs, fmt.Errorf("remove stale profile: %w", err))
				continue
			}
			removed = append(removed, dir)
		}
	}
	return removed, errors.Join(errs...)
}

// WriteOwner records in dir that this process made it, so that
// RemoveStaleDirs removes dir once this process is gone.
func WriteOwner(dir string) error { return writeOwner(dir) }

// writeOwner records in dir that this process made it (RemoveStaleProfiles).
func writeOwner(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(proc.Self().String()+"\n"), 0o600); err != nil {
		return fmt.Errorf("record profile owner: %w", err)
	}
	return nil
}

// stale reports whether dir is a profile or template nobody uses.
func stale(dir string) bool {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() {
		return false
	}
	if b, err := os.ReadFile(filepath.Join(dir, ownerFile)); err == nil {
		if id, err := proc.Parse(string(b)); err == nil {
			return proc.Check(id) == proc.Gone
		}
	}
	// Written by an older geckohost, or being made (the owner file comes
	// right after the directory).
	old := time.Since(fi.ModTime()) > staleAge
	if strings.HasPrefix(filepath.Base(dir), "geckohost-template-") {
		b, err := os.ReadFile(filepath.Join(dir, legacyOwnerFile))
		if err != nil {
			return old
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && !proc.Alive(pid)
	}
	// Firefox's lock is a symlink to "IP:+PID".
	target, err := os.Readlink(filepath.Join(dir, "lock"))
	if err != nil {
		return old
	}
	_, p, ok := strings.Cut(target, "+")
	pid, err := strconv.Atoi(p)
	if !ok || err != nil {
		return old
	}
	return !proc.Alive(pid)
}

const (
	// ownerFile, in a profile or template directory, holds the identity
	// of the geckohost process that made it (proc.ID's String form).
	ownerFile = "geckohost-owner"
	// legacyOwnerFile, in a template directory of an older geckohost,
	// holds its owner's pid.
	legacyOwnerFile = "owner"
)

// staleAge is how old a directory without an owner (nor a lock) must be
// before RemoveStaleProfiles takes it for abandoned.
const staleAge = 10 * time.Minute
