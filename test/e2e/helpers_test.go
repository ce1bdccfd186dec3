package e2e

import (
	"encoding/json"
	"syscall"
)

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func syscallKill(pid, sig int) error { return syscall.Kill(pid, syscall.Signal(sig)) }
