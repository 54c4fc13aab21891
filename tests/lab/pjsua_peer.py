#!/usr/bin/env python3
"""One pjsip (pjsua2) user agent for the switchboard lab, driven over stdin.

Run by tests/common/pjsua.rs with the lab's virtualenv (scripts/ensure-pjsua). It listens on
IP:5060 (UDP), RTP from IP:4000, registers to a registrar or runs peer to peer, plays a WAV
(looped) into every call and records what each call hears to its own WAV. pjsip's own log
(SIP messages included) goes to LOG; stdout carries only JSON lines, one event each.

Commands, one a line (CALL is the number from the `incoming`/`dialing` event):
  dial URI                   call URI
  answer CALL                answer a ringing call (200)
  hangup CALL | hangup all   end a call (or every call)
  hold CALL / unhold CALL    re-INVITE sendonly / sendrecv
  xfer CALL URI              blind transfer: REFER with Refer-To URI (like the pjsua
                             application, the call is hung up once a NOTIFY says 2xx)
  xfer_replaces CALL OTHER   attended transfer: REFER to CALL's peer with Refer-To OTHER's
                             peer and Replaces for the OTHER dialog
  refer accept | refuse      how incoming REFERs are answered from now on (202 / 603)
  quit                       hang up, shut down, exit

Events ("event" field): ready, registration, incoming, dialing, state, media, xfer_request,
xfer_status, replaced, recorded (once the call's WAV is closed and its header written:
`complete`), error, stopped; see tests/common/pjsua.rs.
"""

import argparse
import json
import os
import select
import sys
import time

import pjsua2 as pj

# The original stdout carries the events; fd 1 itself goes to stderr so that anything pjlib
# prints before its log is configured cannot break the JSON stream.
EVENTS = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)

STATES = {
    pj.PJSIP_INV_STATE_NULL: "null",
    pj.PJSIP_INV_STATE_CALLING: "calling",
    pj.PJSIP_INV_STATE_INCOMING: "incoming",
    pj.PJSIP_INV_STATE_EARLY: "early",
    pj.PJSIP_INV_STATE_CONNECTING: "connecting",
    pj.PJSIP_INV_STATE_CONFIRMED: "confirmed",
    pj.PJSIP_INV_STATE_DISCONNECTED: "disconnected",
}
MEDIA = {
    pj.PJSUA_CALL_MEDIA_NONE: "none",
    pj.PJSUA_CALL_MEDIA_ACTIVE: "active",
    pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "local_hold",
    pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "remote_hold",
    pj.PJSUA_CALL_MEDIA_ERROR: "error",
}


def emit(event, **fields):
    fields = {"event": event, **fields}
    EVENTS.write(json.dumps(fields) + "\n")


def header(whole_msg, name):
    """The value of the first header `name` in a SIP message, or None."""
    wanted = name.lower() + ":"
    for line in whole_msg.split("\r\n")[1:]:
        if not line:
            break
        if line.lower().startswith(wanted):
            return line[len(wanted):].strip()
    return None


def wav_complete(path):
    """Whether the WAV's data chunk size (pjmedia writes a 44-byte header) covers the file."""
    try:
        with open(path, "rb") as f:
            head = f.read(44)
        size = os.path.getsize(path)
    except OSError:
        return False
    return len(head) == 44 and int.from_bytes(head[40:44], "little") == size - 44


class Peer:
    """The user agent's state: options, the account, its calls, the player."""

    def __init__(self, opts):
        self.opts = opts
        self.account = None
        self.calls = {}
        self.dropped = []
        self.unborn = []
        self.closing = []
        self.player = None
        self.refer_status = 202 if opts.refer == "accept" else 603
        self.recordings = 0

    def adopt(self, call):
        self.calls[call.getId()] = call

    def call(self, word):
        call = self.calls.get(int(word))
        if call is None:
            raise ValueError(f"no call {word}")
        return call

    def report_recordings(self, force=False):
        """Emits `recorded` for each closed recording whose WAV header is written."""
        for item in list(self.closing):
            call, path, deadline = item
            if force or wav_complete(path) or time.monotonic() > deadline:
                self.closing.remove(item)
                emit("recorded", call=call, path=path, complete=wav_complete(path))

    def record_path(self):
        self.recordings += 1
        return os.path.join(self.opts.rec_dir, f"heard-{self.recordings}.wav")


class PeerCall(pj.Call):
    """A call: reports its states, connects the player and a recorder to its audio."""

    def __init__(self, peer, call_id=pj.PJSUA_INVALID_ID):
        super().__init__(peer.account, call_id)
        self.peer = peer
        self.recorder = None
        self.recording = None
        self.number = None

    def onCallState(self, prm):
        info = self.getInfo()
        self.number = info.id
        if self in self.peer.unborn:
            self.peer.unborn.remove(self)
            self.peer.adopt(self)
        state = STATES.get(info.state, str(info.state))
        emit(
            "state",
            call=info.id,
            state=state,
            code=info.lastStatusCode,
            reason=info.lastReason,
            remote=info.remoteUri,
            call_id=info.callIdString,
        )
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.close_recorder()
            self.peer.calls.pop(info.id, None)
            # Deleting the object inside its own callback is not safe: the main loop does it.
            self.peer.dropped.append(self)

    def close_recorder(self):
        if self.recorder is not None:
            # Destroying the recorder has the conference remove its port on the next clock
            # tick, which writes the WAV header: the main loop reports it once it is there.
            self.recorder = None
            self.peer.closing.append((self.number, self.recording, time.monotonic() + 2.0))

    def onCallMediaState(self, prm):
        info = self.getInfo()
        for media in info.media:
            if media.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            status = MEDIA.get(media.status, str(media.status))
            emit("media", call=info.id, status=status, dir=media.dir)
            if media.status not in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                continue
            audio = self.getAudioMedia(media.index)
            if self.peer.player is not None:
                self.peer.player.startTransmit(audio)
            if self.recorder is None:
                self.recording = self.peer.record_path()
                self.recorder = pj.AudioMediaRecorder()
                self.recorder.createRecorder(self.recording)
            audio.startTransmit(self.recorder)

    def onCallTransferRequest(self, prm):
        prm.statusCode = self.peer.refer_status
        emit("xfer_request", call=self.getId(), target=prm.dstUri, answer=prm.statusCode)
        if prm.statusCode // 100 == 2:
            # Our class for the call to the target, so that it reports like any other.
            # Kept alive here until it has a number (its first state).
            new = PeerCall(self.peer)
            prm.newCall = new
            self.peer.unborn.append(new)

    def onCallTransferStatus(self, prm):
        emit(
            "xfer_status",
            call=self.getId(),
            code=prm.statusCode,
            reason=prm.reason,
            final=bool(prm.finalNotify),
        )
        prm.cont = True
        if prm.statusCode // 100 == 2 and self.isActive():
            # As the pjsua application does: the transfer worked, so leave the call.
            prm.cont = False
            op = pj.CallOpParam()
            op.statusCode = 410
            self.hangup(op)

    def onCallReplaced(self, prm):
        new = PeerCall(self.peer, prm.newCallId)
        prm.newCall = new
        self.peer.adopt(new)
        emit("replaced", call=self.getId(), new_call=prm.newCallId)


class PeerAccount(pj.Account):
    def __init__(self, peer):
        super().__init__()
        self.peer = peer

    def onRegState(self, prm):
        emit("registration", code=prm.code, reason=prm.reason, expires=prm.expiration)

    def onIncomingCall(self, prm):
        call = PeerCall(self.peer, prm.callId)
        self.peer.adopt(call)
        info = call.getInfo()
        msg = prm.rdata.wholeMsg
        emit(
            "incoming",
            call=info.id,
            remote=info.remoteUri,
            call_id=info.callIdString,
            replaces=header(msg, "Replaces"),
            referred_by=header(msg, "Referred-By"),
        )
        op = pj.CallOpParam()
        op.statusCode = 180
        call.answer(op)
        if self.peer.opts.auto_answer:
            op = pj.CallOpParam()
            op.statusCode = 200
            call.answer(op)


def command(peer, line):
    words = line.split()
    if not words:
        return True
    verb, args = words[0].lower(), words[1:]
    if verb == "dial":
        call = PeerCall(peer)
        call.makeCall(args[0], pj.CallOpParam(True))
        peer.adopt(call)
        emit("dialing", call=call.getId(), uri=args[0])
    elif verb == "answer":
        op = pj.CallOpParam()
        op.statusCode = 200
        peer.call(args[0]).answer(op)
    elif verb == "hangup":
        if args and args[0] == "all":
            pj.Endpoint.instance().hangupAllCalls()
        else:
            peer.call(args[0]).hangup(pj.CallOpParam())
    elif verb == "hold":
        peer.call(args[0]).setHold(pj.CallOpParam())
    elif verb == "unhold":
        op = pj.CallOpParam(True)
        op.opt.flag = pj.PJSUA_CALL_UNHOLD
        peer.call(args[0]).reinvite(op)
    elif verb == "xfer":
        peer.call(args[0]).xfer(args[1], pj.CallOpParam())
    elif verb == "xfer_replaces":
        peer.call(args[0]).xferReplaces(peer.call(args[1]), pj.CallOpParam())
    elif verb == "refer":
        peer.refer_status = {"accept": 202, "refuse": 603}[args[0]]
    elif verb == "quit":
        return False
    else:
        raise ValueError(f"unknown command {verb!r}")
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ip", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", default="")
    ap.add_argument("--registrar", help="registrar/domain IP; peer to peer without it")
    ap.add_argument("--play", help="WAV played (looped) into every call")
    ap.add_argument("--rec-dir", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--auto-answer", action="store_true")
    ap.add_argument("--refer", choices=["accept", "refuse"], default="accept")
    ap.add_argument("--codecs", default="PCMU/8000,PCMA/8000")
    opts = ap.parse_args()
    peer = Peer(opts)

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = False
    cfg.uaConfig.userAgent = "pjsua2-lab " + ep.libVersion().full
    cfg.logConfig.level = 5
    cfg.logConfig.consoleLevel = 0
    cfg.logConfig.msgLogging = 1
    cfg.logConfig.filename = opts.log
    cfg.medConfig.clockRate = 8000
    cfg.medConfig.sndClockRate = 8000
    cfg.medConfig.noVad = True
    cfg.medConfig.ecTailLen = 0
    ep.libInit(cfg)
    tcfg = pj.TransportConfig()
    tcfg.port = 5060
    tcfg.boundAddress = opts.ip
    tcfg.publicAddress = opts.ip
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.libStart()
    ep.audDevManager().setNullDev()
    wanted = [c for c in opts.codecs.split(",") if c]
    for codec in ep.codecEnum2():
        priority = 0
        for rank, name in enumerate(wanted):
            if codec.codecId.lower().startswith(name.lower()):
                priority = 255 - rank
        ep.codecSetPriority(codec.codecId, priority)

    if opts.play:
        peer.player = pj.AudioMediaPlayer()
        peer.player.createPlayer(opts.play)

    acfg = pj.AccountConfig()
    domain = opts.registrar or opts.ip
    acfg.idUri = f"sip:{opts.user}@{domain}"
    if opts.registrar:
        acfg.regConfig.registrarUri = f"sip:{opts.registrar}"
        acfg.sipConfig.authCreds.append(
            pj.AuthCredInfo("digest", "*", opts.user, 0, opts.password))
    else:
        acfg.regConfig.registerOnAdd = False
    acfg.natConfig.contactRewriteUse = 0
    acfg.natConfig.viaRewriteUse = 0
    acfg.natConfig.sdpNatRewriteUse = 0
    acfg.mediaConfig.transportConfig.port = 4000
    acfg.mediaConfig.transportConfig.portRange = 100
    acfg.mediaConfig.transportConfig.boundAddress = opts.ip
    acfg.mediaConfig.transportConfig.publicAddress = opts.ip
    peer.account = PeerAccount(peer)
    peer.account.create(acfg, True)
    emit("ready", version=ep.libVersion().full, uri=acfg.idUri)

    buffered = b""
    running = True
    while running:
        ep.libHandleEvents(20)
        peer.dropped.clear()
        peer.report_recordings()
        ready, _, _ = select.select([0], [], [], 0)
        if not ready:
            continue
        chunk = os.read(0, 4096)
        if not chunk:
            break
        buffered += chunk
        while b"\n" in buffered:
            line, buffered = buffered.split(b"\n", 1)
            text = line.decode("utf-8", "replace").strip()
            try:
                running = command(peer, text)
            except (pj.Error, ValueError, IndexError, KeyError) as err:
                info = getattr(err, "info", None)
                emit("error", command=text, message=info() if info else str(err))
            if not running:
                break

    ep.hangupAllCalls()
    for _ in range(25):
        ep.libHandleEvents(20)
    for call in list(peer.calls.values()):
        call.close_recorder()
    for _ in range(10):
        ep.libHandleEvents(20)
    peer.report_recordings(force=True)
    peer.player = None
    emit("stopped")
    ep.libDestroy()


if __name__ == "__main__":
    main()
