"""Media taps: how a bridged call's audio leaves Asterisk and reaches a RecordingSink.

Every tap implements callengine.recorder.Tap and never lets Asterisk write a plaintext file:
- fifo.FifoTap: MixMonitor (started over AMI) writes into a named pipe the engine drains and
  encrypts. Engine and Asterisk on one host; MixMonitor's cost.
- rtp.RtpTap: ARI externalMedia into the call's bridge, RTP to the engine; for an Asterisk
  on another host.
docs/recording-taps.md describes both, their traps and what was measured.
"""
