#!/usr/bin/env python3
"""Reads a message the SMTP peer received, as a mail client would (Python's
email package), and checks it against the report file.

usage: check_mail.py EML CSV_FILE [--no-attachment]

Checks: one text/plain part (the summary, naming the file) and, unless
--no-attachment, one text/csv attachment named after the file whose
base64-decoded bytes equal the file's. Prints the subject.
"""
import email
import email.policy
import os
import sys


def main():
    eml, csv_path = sys.argv[1], sys.argv[2]
    attached = "--no-attachment" not in sys.argv[3:]
    msg = email.message_from_bytes(open(eml, "rb").read(), policy=email.policy.default)
    name = os.path.basename(csv_path)
    if msg.get_content_type() != "multipart/mixed":
        sys.exit(f"check_mail: {msg.get_content_type()}, expected multipart/mixed")
    body = msg.get_body(preferencelist=("plain",))
    if body is None or name not in body.get_content():
        sys.exit(f"check_mail: the text part does not name {name}")
    files = [p for p in msg.iter_attachments()]
    if not attached:
        if files:
            sys.exit("check_mail: an attachment, expected none")
        if "not attached" not in body.get_content():
            sys.exit("check_mail: the body does not say the file is not attached")
    else:
        if len(files) != 1:
            sys.exit(f"check_mail: {len(files)} attachments")
        a = files[0]
        if a.get_filename() != name or a.get_content_type() != "text/csv":
            sys.exit(f"check_mail: attachment {a.get_filename()} {a.get_content_type()}")
        if a.get_payload(decode=True) != open(csv_path, "rb").read():
            sys.exit("check_mail: the attachment differs from the file")
    print(msg["Subject"])


main()
