//go:build !linux

package network

import (
	"errors"
)

var errUnsupported = errors.New("container networks need Linux")

func hostRoutes() ([]routed, error)       { return nil, errUnsupported }
func linkExists(string) bool              { return false }
func ipv6On(string) bool                  { return false }
func setUpBridge(*Network) error          { return errUnsupported }
func deleteLink(string) error             { return nil }
func plug(*Network, *Endpoint, int) error { return errUnsupported }
func addNetworkRules(*Network) error      { return errUnsupported }
func hasNetworkRules(*Network) bool       { return false }
func addPortRules(*Endpoint) error        { return errUnsupported }
func deleteRules(string) error            { return nil }
