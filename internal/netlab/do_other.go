//go:build !linux

package netlab

import "errors"

// Do needs Linux network namespaces.
func (h *Host) Do(f func() error) error {
	return errors.New("netlab: network namespaces need Linux")
}
