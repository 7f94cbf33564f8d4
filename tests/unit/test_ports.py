"""Ports for the services a launcher starts: never one the kernel may lend meanwhile as the
source port of an outgoing connection."""

from __future__ import annotations

import socket

from services.cli.embedded import (
    CLUSTER_BUS_OFFSET,
    _source_ports_start,
    cluster_port,
    free_port,
)


def test_a_free_port_is_below_the_source_ports_and_can_be_bound() -> None:
    for _ in range(50):
        port = free_port()
        assert 10_000 <= port < _source_ports_start()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_cluster_node_port_and_its_bus_port_are_below_the_source_ports() -> None:
    for _ in range(50):
        port = cluster_port()
        assert port >= 10_000
        assert port + CLUSTER_BUS_OFFSET < _source_ports_start()


def test_a_port_is_handed_out_once() -> None:
    """Two services of one system given the same port, neither bound yet, and one of them
    could not start."""
    ports = [free_port() for _ in range(3000)]
    nodes = [cluster_port() for _ in range(100)]
    handed = [*ports, *nodes, *(node + CLUSTER_BUS_OFFSET for node in nodes)]
    assert len(set(handed)) == len(handed)
