#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A notification server for tests: owns org.freedesktop.Notifications on
the session bus given in $DBUS_SESSION_BUS_ADDRESS and appends every
notification it receives, as one JSON object per line, to the file named
on the command line. It renders nothing.

It also serves org.santa.TestNotifications.InvokeAction(id, key) on the
same object, which emits ActionInvoked(id, key) as if a person had clicked
the button, so that a test can follow the action to its end.

Run: notify_server.py RECORD_FILE. It prints "ready" on stdout once it owns
the name, and runs until killed.
"""
import json
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

IFACE = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
TEST_IFACE = "org.santa.TestNotifications"


class Server(dbus.service.Object):
    def __init__(self, bus, record):
        super().__init__(bus, PATH)
        self.record = record
        self.next_id = 0

    def _write(self, obj):
        with open(self.record, "a") as f:
            f.write(json.dumps(obj) + "\n")

    @dbus.service.method(IFACE, in_signature="", out_signature="as")
    def GetCapabilities(self):
        return ["actions", "body", "body-markup", "persistence"]

    @dbus.service.method(IFACE, in_signature="", out_signature="ssss")
    def GetServerInformation(self):
        return ("santa-test-notifications", "santa", "1.0", "1.2")

    @dbus.service.method(IFACE, in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app_name, replaces_id, app_icon, summary, body, actions, hints,
               expire_timeout):
        if replaces_id:
            nid = int(replaces_id)
        else:
            self.next_id += 1
            nid = self.next_id
        urgency = hints.get("urgency")
        self._write({
            "id": nid,
            "replaces_id": int(replaces_id),
            "app_name": str(app_name),
            "icon": str(app_icon),
            "summary": str(summary),
            "body": str(body),
            "actions": [str(a) for a in actions],
            "urgency": int(urgency) if urgency is not None else None,
            "expire_timeout": int(expire_timeout),
        })
        return dbus.UInt32(nid)

    @dbus.service.method(IFACE, in_signature="u", out_signature="")
    def CloseNotification(self, nid):
        self.NotificationClosed(nid, 3)

    @dbus.service.signal(IFACE, signature="uu")
    def NotificationClosed(self, nid, reason):
        pass

    @dbus.service.signal(IFACE, signature="us")
    def ActionInvoked(self, nid, key):
        pass

    @dbus.service.method(TEST_IFACE, in_signature="us", out_signature="")
    def InvokeAction(self, nid, key):
        self.ActionInvoked(nid, key)


def main():
    DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    name = dbus.service.BusName(IFACE, bus, do_not_queue=True)
    server = Server(bus, sys.argv[1])
    print("ready", flush=True)
    loop = GLib.MainLoop()
    try:
        loop.run()
    finally:
        del name, server


if __name__ == "__main__":
    main()
