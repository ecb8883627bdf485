"""Exploration, not a test (run by hand in a netns): what app_queue does with the queue
callback's placeholder. Findings are in the branch's report: Queue() does not answer the Local
;2 on entry; the ;1 enters Stasis when the member answers; the placeholder queues after callers
who joined earlier; a comma-separated media list plays as one playback."""
import asyncio, time, sys
sys.path.insert(0, '.')  # run from the repository root
from tests.support.asterisk import Asterisk, AriApp
from tests.support.phones import Phone
from tests.support.queue_callers import QueueCaller

async def main():
    ast = Asterisk(); ast.start()
    try:
        async with AriApp(ast, "callengine") as app, Phone(5091, "answer", hangup_after_ms=3000) as agent:
            b = QueueCaller("support", "+48600100299", hold_ms=60000).start()
            await b.wait_for("answered")
            a = QueueCaller("support", "+48600100200", keys=[1500, "1"], hold_ms=20000).start()
            await a.wait_for("answered")
            ev = await app.wait_for("StasisStart", timeout=10)
            print("A stasis:", ev["args"], ev["channel"]["name"], ev["channel"]["state"], ev["channel"]["caller"])
            st, body = await app.post(f"/channels/{ev['channel']['id']}/play", media="sound:auth-thankyou,sound:goodbye", playbackId="pb-1")
            print("play multi", st, body and body.get("media_uri"))
            fin = await app.wait_for("PlaybackFinished", timeout=10)
            print("finished", fin["playback"]["state"], time.time())
            print(ast.cli("queue show support"))
            joined = float(ev["args"][2])
            cid = await app.originate(f"Local/{joined:.3f}-support@callengine-queue-callback/n", timeout=60)
            await asyncio.sleep(1.5)
            print("stasis for local?", [e["channel"]["name"] for e in app.find("StasisStart", cid)])
            print(ast.cli("queue show support"))
            ast.cli("queue unpause member PJSIP/queue-agent")
            ev2 = await app.wait_for("StasisStart", cid, timeout=15)
            print("local answered", ev2["channel"]["name"], ev2["channel"]["state"], "agent answered", agent.calls_answered)
            print(ast.cli("queue show support"))
            await asyncio.sleep(4)
            print("agent calls", agent.calls_received, agent.counters())
            print(ast.cli("queue show support"))
            a.stop(); b.stop()
    finally:
        print(open(ast.messages_log).read()[-3000:])
        ast.stop()
asyncio.run(main())
