"""The bank's secrets on disk: master key, nonce PRF key and denomination keys.

Secrets live in one directory (0700) of 0600 files and never in the
database; the database holds only the public halves. Each generation of
denomination keys is one file, written once (atomically). Only the signer
(:mod:`.signer_local`, in ``ecash bank signer`` or an operator's command)
loads a :class:`KeyRing`; an HTTP worker never does.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from ..crypto import group
from ..crypto.keys import DenominationKey, DenominationSecret, make_denomination_key
from ..crypto.sign import SigningKey
from ..files import private_dir
from ..wire import json as wj

MASTER_FILE = "master.seed"
NONCE_KEY_FILE = "nonce.key"


def write_secret(path: Path, data: str) -> None:
    """Create ``path`` with mode 0600, atomically (temp file, fsync, rename)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _read_secret(path: Path) -> str:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(f"{path.name} must not be readable by others (mode {mode:o})")
    return path.read_text().strip()


@dataclass
class Generation:
    number: int
    keys: list[DenominationSecret]

    def to_json(self) -> str:
        return json.dumps({"generation": self.number, "keys": [
            {"x": group.encode_scalar(k.x).hex(), "key": wj.key_to_json(k.public)}
            for k in self.keys]}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Generation:
        d = json.loads(text)
        keys = [DenominationSecret(group.decode_scalar(bytes.fromhex(k["x"])),
                                   wj.key_from_json(k["key"])) for k in d["keys"]]
        for k in keys:
            if group.base_mul(k.x) != k.public.h:
                raise ValueError(f"generation {d['generation']}: x does not match h")
        return cls(int(d["generation"]), keys)


@dataclass
class KeyRing:
    """Everything secret the bank needs, loaded from one directory."""

    directory: Path
    master: SigningKey
    nonce_key: bytes
    generations: dict[int, Generation] = field(default_factory=dict)
    by_id: dict[bytes, DenominationSecret] = field(default_factory=dict)

    @classmethod
    def create(cls, directory: Path) -> KeyRing:
        private_dir(directory)
        if (directory / MASTER_FILE).exists():
            raise FileExistsError(f"{directory} already holds a bank's keys")
        write_secret(directory / MASTER_FILE, secrets.token_bytes(32).hex())
        write_secret(directory / NONCE_KEY_FILE, secrets.token_bytes(32).hex())
        return cls.load(directory)

    @classmethod
    def load(cls, directory: Path) -> KeyRing:
        master = SigningKey.from_seed(bytes.fromhex(_read_secret(directory / MASTER_FILE)))
        nonce_key = bytes.fromhex(_read_secret(directory / NONCE_KEY_FILE))
        ring = cls(directory, master, nonce_key)
        for path in sorted(directory.glob("generation-*.json")):
            ring._add(Generation.from_json(_read_secret(path)))
        return ring

    def _add(self, gen: Generation) -> None:
        self.generations[gen.number] = gen
        for k in gen.keys:
            self.by_id[k.public.key_id] = k

    def reload(self) -> None:
        """Pick up generations another process added (after a rotation)."""
        for path in sorted(self.directory.glob("generation-*.json")):
            number = int(path.stem.split("-")[1])
            if number not in self.generations:
                self._add(Generation.from_json(_read_secret(path)))

    def new_generation(self, number: int, values: list[int], currency: str,
                       withdraw_start: int, withdraw_end: int, deposit_end: int) -> Generation:
        """Create, sign and store generation ``number`` (one key per value)."""
        path = self.directory / f"generation-{number:04d}.json"
        if path.exists() or number in self.generations:
            raise FileExistsError(f"generation {number} exists")
        keys = [make_denomination_key(self.master, group.random_scalar(), v, currency,
                                      withdraw_start, withdraw_end, deposit_end)
                for v in values]
        gen = Generation(number, keys)
        write_secret(path, gen.to_json())
        self._add(gen)
        return gen

    def public_keys(self) -> list[DenominationKey]:
        return [k.public for g in self.generations.values() for k in g.keys]
