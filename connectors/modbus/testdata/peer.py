#!/usr/bin/python3
"""Modbus test peer for connectors/modbus: a pymodbus 3.0.0 server.

  peer.py --tcp PORT [--set TABLE:ADDR:V1,V2,...]...
  peer.py --rtu DEVICE [--baud N] [--set ...]

TABLE is co (coils), di (discrete inputs), hr (holding registers) or ir
(input registers); addresses are 0-based (zero_mode). Each table holds
200 entries: reading past them answers exception 2 (illegal address).
The server answers every unit id. It runs until killed.
"""
import argparse
import logging
import sys

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)

SIZE = 200


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcp", type=int)
    ap.add_argument("--rtu")
    ap.add_argument("--baud", type=int, default=19200)
    ap.add_argument("--set", action="append", default=[])
    a = ap.parse_args()

    blocks = {t: [0] * SIZE for t in ("co", "di", "hr", "ir")}
    for s in a.set:
        table, addr, values = s.split(":")
        for i, v in enumerate(values.split(",")):
            blocks[table][int(addr) + i] = int(v)
    store = ModbusSlaveContext(
        di=ModbusSequentialDataBlock(0, blocks["di"]),
        co=ModbusSequentialDataBlock(0, blocks["co"]),
        hr=ModbusSequentialDataBlock(0, blocks["hr"]),
        ir=ModbusSequentialDataBlock(0, blocks["ir"]),
        zero_mode=True,
    )
    context = ModbusServerContext(slaves=store, single=True)
    logging.basicConfig(stream=sys.stderr, level=logging.CRITICAL)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    print("peer: starting", flush=True)
    if a.tcp is not None:
        from pymodbus.server import StartTcpServer

        StartTcpServer(context=context, address=("127.0.0.1", a.tcp), allow_reuse_address=True)
    else:
        from pymodbus.server import StartSerialServer
        from pymodbus.transaction import ModbusRtuFramer

        StartSerialServer(context=context, framer=ModbusRtuFramer, port=a.rtu, baudrate=a.baud,
                          bytesize=8, parity="N", stopbits=2, timeout=0.05)


if __name__ == "__main__":
    main()
