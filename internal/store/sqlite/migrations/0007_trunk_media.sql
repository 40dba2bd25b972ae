-- Media encryption toward a trunk (issue 6): rtp (plain RTP/AVP, what
-- most carriers take), srtp (RTP/SAVP with SDES keys, required) or
-- best-effort (RTP/AVP with SDES keys; plain answers accepted).
ALTER TABLE trunks ADD COLUMN media TEXT NOT NULL DEFAULT 'rtp';
