package container

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/kiln-project/kiln/internal/atomicfile"
)

// maxName keeps a name a valid file name under names/.
const maxName = 255

// ValidateName checks a container name against Docker's grammar, [a-zA-Z0-9][a-zA-Z0-9_.-]+,
// and returns it without the one leading "/" Docker also accepts.
func ValidateName(name string) (string, error) {
	n := strings.TrimPrefix(name, "/")
	ok := len(n) >= 2 && len(n) <= maxName && isAlnum(n[0])
	for i := 1; ok && i < len(n); i++ {
		ok = isAlnum(n[i]) || n[i] == '_' || n[i] == '.' || n[i] == '-'
	}
	if !ok {
		return "", fmt.Errorf("invalid container name %q: want [a-zA-Z0-9][a-zA-Z0-9_.-]+, at most %d characters", name, maxName)
	}
	return n, nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// nameOwner reads the id recorded in names/<name>.
func (cs *Containers) nameOwner(name string) (string, error) {
	b, err := os.ReadFile(cs.path("names", name))
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if !isID(id) {
		return "", fmt.Errorf("name %s: bad owner %q", name, id)
	}
	return id, nil
}

// nameFree reports whether name can be claimed. Call with names.lock held. A name whose owner's
// directory is gone was left by a crash; it is free.
func (cs *Containers) nameFree(name string) error {
	id, err := cs.nameOwner(name)
	if err == nil && cs.exists(id) {
		return &NameInUseError{Name: name, ID: id}
	}
	return nil
}

// writeName records id as name's owner. The file is written aside and renamed so that readers,
// who do not take names.lock, never see it half written. Call with names.lock held.
func (cs *Containers) writeName(name, id string) error {
	// The temporary name starts with ".", which is never a valid container name.
	return atomicfile.Write(cs.path("names", name), []byte(id+"\n"), 0o600, atomicfile.NoSync, "")
}

// freeNames removes the name files that point at id: name's, or, when the state could not be
// read (name == ""), any. Call with names.lock held.
func (cs *Containers) freeNames(name, id string) error {
	names := []string{name}
	if name == "" {
		entries, err := os.ReadDir(cs.path("names"))
		if err != nil {
			return err
		}
		names = names[:0]
		for _, e := range entries {
			names = append(names, e.Name())
		}
	}
	for _, n := range names {
		if owner, err := cs.nameOwner(n); err == nil && owner == id {
			if err := os.Remove(cs.path("names", n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// generateFreeName picks an unused "adjective_noun" name; after a few collisions it adds a
// number, as Docker does. Call with names.lock held.
func (cs *Containers) generateFreeName() (string, error) {
	for try := 0; try < 20; try++ {
		name := adjectives[rand.IntN(len(adjectives))] + "_" + nouns[rand.IntN(len(nouns))]
		if try >= 3 {
			name += fmt.Sprint(rand.IntN(100))
		}
		err := cs.nameFree(name)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, ErrNameInUse) {
			return "", err
		}
	}
	return "", errors.New("no free generated name after 20 tries: give one with --name")
}

// The words of generated names: a kiln's temperaments and the things in and around it.
var (
	adjectives = [...]string{
		"amber", "ardent", "blazing", "bold", "brisk", "calm", "clever", "cosy", "crisp",
		"daring", "deft", "eager", "fervent", "fiery", "gentle", "glowing", "hardy", "humble",
		"jolly", "keen", "lively", "lucid", "mellow", "merry", "nimble", "patient", "plucky",
		"proud", "quiet", "radiant", "rustic", "serene", "smoky", "snug", "steady", "stoic",
		"sturdy", "sunny", "swift", "tempered", "tidy", "vivid", "warm", "witty", "zesty",
	}
	nouns = [...]string{
		"anvil", "ash", "bellows", "bisque", "brick", "celadon", "cinder", "clay", "coil",
		"crucible", "ember", "enamel", "faience", "flame", "flue", "flux", "forge", "furnace",
		"glaze", "grog", "hearth", "jug", "kaolin", "ladle", "lustre", "majolica", "mould",
		"oxide", "porcelain", "pot", "raku", "saggar", "shard", "slip", "spark", "stoneware",
		"terracotta", "tile", "urn", "vase", "wheel", "wick",
	}
)
