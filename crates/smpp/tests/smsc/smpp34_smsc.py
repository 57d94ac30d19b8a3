"""An SMSC for sihai-smpp's interop test, built on the smpp34 package from PyPI (an
SMPP 3.4 implementation sihai did not write). It accepts every bind, answers every
submit_sm with message id "smsc-<n>", and prints one JSON line per event on stdout so
the test can check what the SMSC decoded. Usage: python smpp34_smsc.py PORT
"""

import asyncio
import json
import sys

import smpp34


def emit(**fields):
    print(json.dumps(fields), flush=True)


async def main(port):
    server = smpp34.Server(host="127.0.0.1", port=port, system_id="smpp34-smsc")
    await server.start()
    emit(event="listening", port=port)
    submitted = 0
    while True:
        event = await server.next()
        if isinstance(event, smpp34.Esme):
            emit(event="bound", system_id=event.system_id)
        elif isinstance(event, smpp34.SubmitSmEvent):
            submitted += 1
            message_id = f"smsc-{submitted}"
            event.accept(message_id=message_id)
            emit(
                event="submit_sm",
                message_id=message_id,
                source_addr=event.source_addr,
                destination_addr=event.destination_addr,
                esm_class=event.esm_class,
                data_coding=event.data_coding,
                registered_delivery=event.registered_delivery,
                short_message=event.short_message.hex(),
            )
        elif isinstance(event, smpp34.Unbound):
            emit(event="unbound")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
