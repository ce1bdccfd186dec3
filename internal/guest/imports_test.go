package guest

import (
	"os/exec"
	"strings"
	"testing"
)

// TestInitImportsStayLight keeps kiln-init small and static: it may link only the standard
// library, golang.org/x/sys and the two kiln packages written for it.
func TestInitImportsStayLight(t *testing.T) {
	const module = "github.com/kiln-project/kiln/"
	allowed := map[string]bool{
		module + "cmd/kiln-init":       true,
		module + "internal/guest":      true,
		module + "internal/bootconfig": true,
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", module+"cmd/kiln-init").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, l := range lines {
		pkg, std, _ := strings.Cut(l, " ")
		if std == "true" || allowed[pkg] || strings.HasPrefix(pkg, "golang.org/x/sys/") {
			continue
		}
		t.Errorf("kiln-init imports %s: only the standard library, golang.org/x/sys and %v may be linked", pkg, allowed)
	}
	if len(lines) < len(allowed) {
		t.Fatalf("go list listed %d packages, fewer than kiln-init's own %d", len(lines), len(allowed))
	}
}
