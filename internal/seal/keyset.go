package seal

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// The keyring's data keys are a Tink keyset of AES-256-GCM keys, stored
// as Tink stores one (an EncryptedKeyset whose encrypted_keyset is the
// serialized Keyset wrapped by the KEK) and used as Tink uses one
// (ciphertexts start with 0x01 and the key's big-endian ID). This file
// reads and writes that format by hand, with protowire alone: keyrings
// written by the Tink-based versions of this package open, Tink opens
// the ones written here (keyset_test.go checks both ways), and every
// agent, which opens its keyring at start, is spared Tink's registry and
// the protobuf runtime it needs.
//
// Field numbers are those of Tink's tink.proto and aes_gcm.proto.
const (
	aesGCMTypeURL = "type.googleapis.com/google.crypto.tink.AesGcmKey"

	statusEnabled  = 1 // KeyStatusType ENABLED
	statusDisabled = 2 // KeyStatusType DISABLED
	prefixTink     = 1 // OutputPrefixType TINK
	symmetric      = 1 // KeyData.KeyMaterialType SYMMETRIC

	tinkPrefixSize = 5 // 0x01 and the key ID
	dataKeySize    = 32
)

// dataKey is one AES-256-GCM key of the keyset.
type dataKey struct {
	id     uint32
	status uint64 // statusEnabled or statusDisabled
	value  []byte
	gcm    *aesGCM
}

// keyset is the keyring's data keys: the primary encrypts, every enabled
// key decrypts.
type keyset struct {
	primary uint32
	keys    []dataKey
}

// newKeyset returns a keyset of one fresh key.
func newKeyset() (*keyset, error) {
	ks := &keyset{}
	id, err := ks.add()
	if err != nil {
		return nil, err
	}
	ks.primary = id
	return ks, nil
}

// clone returns a copy to change (keys' bytes are shared: they never change).
func (ks *keyset) clone() *keyset {
	return &keyset{primary: ks.primary, keys: slices.Clone(ks.keys)}
}

// add adds a fresh enabled key under a random ID no other key has.
func (ks *keyset) add() (uint32, error) {
	var b [4]byte
	var id uint32
	for id == 0 || ks.find(id) >= 0 {
		rand.Read(b[:])
		id = binary.BigEndian.Uint32(b[:])
	}
	value := make([]byte, dataKeySize)
	rand.Read(value)
	g, err := newAESGCM(value)
	if err != nil {
		return 0, err
	}
	ks.keys = append(ks.keys, dataKey{id: id, status: statusEnabled, value: value, gcm: g})
	return id, nil
}

func (ks *keyset) find(id uint32) int {
	return slices.IndexFunc(ks.keys, func(k dataKey) bool { return k.id == id })
}

// disable stops key id from opening anything; the primary cannot be.
func (ks *keyset) disable(id uint32) error {
	i := ks.find(id)
	switch {
	case i < 0:
		return fmt.Errorf("no key %d in the keyset", id)
	case id == ks.primary:
		return fmt.Errorf("key %d is the primary", id)
	}
	ks.keys[i].status = statusDisabled
	return nil
}

// Encrypt seals under the primary: prefix, nonce, ciphertext, tag.
func (ks *keyset) Encrypt(plaintext, associatedData []byte) ([]byte, error) {
	i := ks.find(ks.primary)
	if i < 0 {
		return nil, errors.New("keyset has no primary key")
	}
	out := make([]byte, tinkPrefixSize, tinkPrefixSize+gcmNonceSize+len(plaintext)+gcmTagSize)
	out[0] = prefixTink
	binary.BigEndian.PutUint32(out[1:], ks.primary)
	return ks.keys[i].gcm.seal(out, plaintext, associatedData), nil
}

// Decrypt opens a ciphertext under the enabled key its prefix names.
func (ks *keyset) Decrypt(ciphertext, associatedData []byte) ([]byte, error) {
	id, err := KeyID(ciphertext)
	if err != nil {
		return nil, err
	}
	i := ks.find(id)
	if i < 0 || ks.keys[i].status != statusEnabled {
		return nil, ErrOpen
	}
	return ks.keys[i].gcm.Decrypt(ciphertext[tinkPrefixSize:], associatedData)
}

// marshal serializes the keyset as a Tink Keyset message.
func (ks *keyset) marshal() []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(ks.primary))
	for _, k := range ks.keys {
		var aesKey []byte // AesGcmKey: version 0 (left out), key_value
		aesKey = protowire.AppendTag(aesKey, 3, protowire.BytesType)
		aesKey = protowire.AppendBytes(aesKey, k.value)
		var data []byte // KeyData
		data = protowire.AppendTag(data, 1, protowire.BytesType)
		data = protowire.AppendString(data, aesGCMTypeURL)
		data = protowire.AppendTag(data, 2, protowire.BytesType)
		data = protowire.AppendBytes(data, aesKey)
		data = protowire.AppendTag(data, 3, protowire.VarintType)
		data = protowire.AppendVarint(data, symmetric)
		var key []byte // Keyset.Key
		key = protowire.AppendTag(key, 1, protowire.BytesType)
		key = protowire.AppendBytes(key, data)
		key = k.appendState(key)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, key)
		clear(aesKey)
		clear(data)
		clear(key)
	}
	return b
}

// appendState appends fields 2–4 that Keyset.Key and KeysetInfo.KeyInfo
// share: status, key ID and output prefix type.
func (k dataKey) appendState(b []byte) []byte {
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, k.status)
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(k.id))
	b = protowire.AppendTag(b, 4, protowire.VarintType)
	return protowire.AppendVarint(b, prefixTink)
}

// info serializes the KeysetInfo Tink stores in the clear beside the
// wrapped keyset: IDs, types and states, no key material.
func (ks *keyset) info() []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(ks.primary))
	for _, k := range ks.keys {
		var ki []byte
		ki = protowire.AppendTag(ki, 1, protowire.BytesType)
		ki = protowire.AppendString(ki, aesGCMTypeURL)
		ki = k.appendState(ki)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, ki)
	}
	return b
}

// wrap returns the keyset as a Tink EncryptedKeyset under kek.
func (ks *keyset) wrap(kek KEK, associatedData []byte) ([]byte, error) {
	plain := ks.marshal()
	ct, err := kek.Encrypt(plain, associatedData)
	clear(plain)
	if err != nil {
		return nil, err
	}
	var b []byte
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, ct)
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendBytes(b, ks.info())
	return b, nil
}

// errWrapped marks a wrapped keyset that does not unwrap: a wrong KEK, or
// altered bytes.
var errWrapped = errors.New("the wrapped keyset does not open")

// unwrapKeyset reads a Tink EncryptedKeyset, unwraps it under kek and
// parses and checks the keyset as Tink does. A keyset of anything but
// AES-GCM keys with Tink's output prefix is refused.
func unwrapKeyset(b []byte, kek KEK, associatedData []byte) (*keyset, error) {
	var ct []byte
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num == 2 && typ == protowire.BytesType {
			ct = v
		}
		return nil
	})
	if err != nil || len(ct) == 0 {
		return nil, fmt.Errorf("%w: not an encrypted keyset", ErrKeyringDamaged)
	}
	plain, err := kek.Decrypt(ct, associatedData)
	if err != nil {
		return nil, errWrapped
	}
	defer clear(plain)
	ks, err := parseKeyset(plain)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyringDamaged, err)
	}
	return ks, nil
}

// parseKeyset parses and checks a serialized Keyset.
func parseKeyset(b []byte) (*keyset, error) {
	ks := &keyset{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			ks.primary = uint32(n)
		case num == 2 && typ == protowire.BytesType:
			k, err := parseKey(v)
			if err != nil {
				return err
			}
			if ks.find(k.id) >= 0 {
				return fmt.Errorf("keyset holds key ID %d twice", k.id)
			}
			ks.keys = append(ks.keys, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	i := ks.find(ks.primary)
	if i < 0 || ks.keys[i].status != statusEnabled {
		return nil, fmt.Errorf("keyset has no enabled primary key (ID %d)", ks.primary)
	}
	return ks, nil
}

// parseKey parses a Keyset.Key holding an AES-GCM key.
func parseKey(b []byte) (dataKey, error) {
	var k dataKey
	var data []byte
	var prefix uint64
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			data = v
		case num == 2 && typ == protowire.VarintType:
			k.status = n
		case num == 3 && typ == protowire.VarintType:
			k.id = uint32(n)
		case num == 4 && typ == protowire.VarintType:
			prefix = n
		}
		return nil
	})
	if err != nil {
		return k, err
	}
	if prefix != prefixTink {
		return k, fmt.Errorf("key %d: output prefix type %d, want Tink's (%d)", k.id, prefix, prefixTink)
	}
	if k.status != statusEnabled && k.status != statusDisabled {
		return k, fmt.Errorf("key %d: status %d", k.id, k.status)
	}
	var typeURL string
	var aesKey []byte
	err = fields(data, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			typeURL = string(v)
		case num == 2 && typ == protowire.BytesType:
			aesKey = v
		}
		return nil
	})
	if err != nil {
		return k, err
	}
	if typeURL != aesGCMTypeURL {
		return k, fmt.Errorf("key %d: type %q, want %q", k.id, typeURL, aesGCMTypeURL)
	}
	var version uint64
	err = fields(aesKey, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			version = n
		case num == 3 && typ == protowire.BytesType:
			k.value = slices.Clone(v)
		}
		return nil
	})
	if err != nil {
		return k, err
	}
	if version != 0 {
		return k, fmt.Errorf("key %d: AES-GCM key version %d", k.id, version)
	}
	if len(k.value) != 16 && len(k.value) != 32 {
		return k, fmt.Errorf("key %d: %d key bytes", k.id, len(k.value))
	}
	if k.gcm, err = newAESGCM(k.value); err != nil {
		return k, fmt.Errorf("key %d: %w", k.id, err)
	}
	return k, nil
}

// fields calls f with each field of a protobuf message: bytes fields'
// contents as v, varints as n; other wire types are skipped. A truncated
// or malformed message is an error.
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error) error {
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		var v []byte
		var n uint64
		switch typ {
		case protowire.VarintType:
			n, l = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			v, l = protowire.ConsumeBytes(b)
		default:
			l = protowire.ConsumeFieldValue(num, typ, b)
		}
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		if err := f(num, typ, v, n); err != nil {
			return err
		}
	}
	return nil
}
