//! SMPP 3.4 PDUs (§3, §4): the 16-octet header and the bodies a transmitter exchanges
//! with an SMSC. Decoding takes one whole PDU ([`frame_length`] says where it ends in a
//! stream) and checks every length against what is there; it never panics and never
//! indexes past the input.

use crate::error::PduError;

/// The header: command_length, command_id, command_status, sequence_number.
pub const HEADER_LEN: usize = 16;

/// No PDU a transmitter exchanges comes near this (a submit_sm with every field full and
/// a few TLVs is under 1 KiB); a larger command_length is a broken or hostile peer, and
/// refusing it bounds the buffer a stream needs.
pub const MAX_PDU_LEN: u32 = 64 * 1024;

pub mod command_id {
    pub const GENERIC_NACK: u32 = 0x8000_0000;
    pub const BIND_TRANSMITTER: u32 = 0x0000_0002;
    pub const BIND_TRANSMITTER_RESP: u32 = 0x8000_0002;
    pub const SUBMIT_SM: u32 = 0x0000_0004;
    pub const SUBMIT_SM_RESP: u32 = 0x8000_0004;
    pub const DELIVER_SM: u32 = 0x0000_0005;
    pub const DELIVER_SM_RESP: u32 = 0x8000_0005;
    pub const UNBIND: u32 = 0x0000_0006;
    pub const UNBIND_RESP: u32 = 0x8000_0006;
    pub const ENQUIRE_LINK: u32 = 0x0000_0015;
    pub const ENQUIRE_LINK_RESP: u32 = 0x8000_0015;
}

/// command_status values (§5.1.3) this crate sends or reacts to.
pub mod status {
    pub const ESME_ROK: u32 = 0x0000_0000;
    pub const ESME_RINVMSGLEN: u32 = 0x0000_0001;
    pub const ESME_RINVCMDLEN: u32 = 0x0000_0002;
    pub const ESME_RINVCMDID: u32 = 0x0000_0003;
    pub const ESME_RSYSERR: u32 = 0x0000_0008;
    pub const ESME_RBINDFAIL: u32 = 0x0000_000D;
    pub const ESME_RINVPASWD: u32 = 0x0000_000E;
    pub const ESME_RINVSYSID: u32 = 0x0000_000F;
    pub const ESME_RMSGQFUL: u32 = 0x0000_0014;
    pub const ESME_RTHROTTLED: u32 = 0x0000_0058;
}

/// esm_class bits (§5.2.12).
pub mod esm_class {
    /// short_message starts with a User Data Header (concatenation).
    pub const UDHI: u8 = 0x40;
    /// deliver_sm carries an SMSC delivery receipt (message type bits 2–5 = 0001).
    pub const DELIVERY_RECEIPT: u8 = 0x04;
    pub const MESSAGE_TYPE_MASK: u8 = 0x3C;
}

/// data_coding 0x08: UCS-2, which every Chinese handset shows; sent as UTF-16BE.
pub const DATA_CODING_UCS2: u8 = 0x08;

/// Maximum lengths of the C-octet strings, without the terminating NUL (§4 tables give
/// them with it: system_id 16, password 9, ...).
pub mod max_len {
    pub const SYSTEM_ID: usize = 15;
    pub const PASSWORD: usize = 8;
    pub const SYSTEM_TYPE: usize = 12;
    pub const ADDRESS_RANGE: usize = 40;
    pub const SERVICE_TYPE: usize = 5;
    pub const ADDRESS: usize = 20;
    pub const TIME: usize = 16;
    pub const MESSAGE_ID: usize = 64;
    pub const SHORT_MESSAGE: usize = 254;
}

/// TLV tags (§5.3.2) the session reads from delivery receipts.
pub mod tlv_tag {
    pub const RECEIPTED_MESSAGE_ID: u16 = 0x001E;
    pub const MESSAGE_STATE: u16 = 0x0427;
}

/// An optional parameter, kept as it came so unknown ones round-trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    pub tag: u16,
    pub value: Vec<u8>,
}

/// bind_transmitter (§4.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bind {
    pub system_id: String,
    pub password: String,
    pub system_type: String,
    pub interface_version: u8,
    pub addr_ton: u8,
    pub addr_npi: u8,
    pub address_range: String,
}

/// submit_sm (§4.4.1) and deliver_sm (§4.6.1) share one layout.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShortMessage {
    pub service_type: String,
    pub source_addr_ton: u8,
    pub source_addr_npi: u8,
    pub source_addr: String,
    pub dest_addr_ton: u8,
    pub dest_addr_npi: u8,
    pub destination_addr: String,
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub schedule_delivery_time: String,
    pub validity_period: String,
    pub registered_delivery: u8,
    pub replace_if_present_flag: u8,
    pub data_coding: u8,
    pub sm_default_msg_id: u8,
    pub short_message: Vec<u8>,
    pub tlvs: Vec<Tlv>,
}

impl ShortMessage {
    pub fn tlv(&self, tag: u16) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|tlv| tlv.tag == tag)
            .map(|tlv| tlv.value.as_slice())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    GenericNack,
    BindTransmitter(Bind),
    /// The SMSC's system_id; empty when the bind was refused and the SMSC sent no body.
    BindTransmitterResp {
        system_id: String,
        tlvs: Vec<Tlv>,
    },
    SubmitSm(ShortMessage),
    /// Empty message_id when the submit was refused (§4.4.2: no body on error).
    SubmitSmResp {
        message_id: String,
    },
    DeliverSm(ShortMessage),
    DeliverSmResp,
    Unbind,
    UnbindResp,
    EnquireLink,
    EnquireLinkResp,
}

impl Body {
    pub fn command_id(&self) -> u32 {
        use command_id::*;
        match self {
            Body::GenericNack => GENERIC_NACK,
            Body::BindTransmitter(_) => BIND_TRANSMITTER,
            Body::BindTransmitterResp { .. } => BIND_TRANSMITTER_RESP,
            Body::SubmitSm(_) => SUBMIT_SM,
            Body::SubmitSmResp { .. } => SUBMIT_SM_RESP,
            Body::DeliverSm(_) => DELIVER_SM,
            Body::DeliverSmResp => DELIVER_SM_RESP,
            Body::Unbind => UNBIND,
            Body::UnbindResp => UNBIND_RESP,
            Body::EnquireLink => ENQUIRE_LINK,
            Body::EnquireLinkResp => ENQUIRE_LINK_RESP,
        }
    }

    pub fn name(&self) -> &'static str {
        command_name(self.command_id())
    }
}

fn command_name(id: u32) -> &'static str {
    use command_id::*;
    match id {
        GENERIC_NACK => "generic_nack",
        BIND_TRANSMITTER => "bind_transmitter",
        BIND_TRANSMITTER_RESP => "bind_transmitter_resp",
        SUBMIT_SM => "submit_sm",
        SUBMIT_SM_RESP => "submit_sm_resp",
        DELIVER_SM => "deliver_sm",
        DELIVER_SM_RESP => "deliver_sm_resp",
        UNBIND => "unbind",
        UNBIND_RESP => "unbind_resp",
        ENQUIRE_LINK => "enquire_link",
        ENQUIRE_LINK_RESP => "enquire_link_resp",
        _ => "unknown",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu {
    pub command_status: u32,
    pub sequence_number: u32,
    pub body: Body,
}

/// How many octets the PDU at the start of `stream` occupies, once its header is in:
/// `Ok(None)` while fewer than 4 octets have arrived. A length outside
/// 16..=[`MAX_PDU_LEN`] is an error; the stream cannot be resynchronised after it.
pub fn frame_length(stream: &[u8]) -> Result<Option<usize>, PduError> {
    let Some(prefix) = stream.first_chunk::<4>() else {
        return Ok(None);
    };
    let length = u32::from_be_bytes(*prefix);
    if length < HEADER_LEN as u32 {
        return Err(PduError::LengthTooShort { length });
    }
    if length > MAX_PDU_LEN {
        return Err(PduError::LengthTooLong {
            length,
            max: MAX_PDU_LEN,
        });
    }
    Ok(Some(length as usize))
}

/// command_id and sequence_number of a PDU whose body could not be decoded, so a
/// generic_nack (or the matching response with an error status) can name it.
pub fn peek_header(frame: &[u8]) -> Option<(u32, u32)> {
    let command_id = u32::from_be_bytes(*frame.get(4..8)?.first_chunk::<4>()?);
    let sequence_number = u32::from_be_bytes(*frame.get(12..16)?.first_chunk::<4>()?);
    Some((command_id, sequence_number))
}

impl Pdu {
    pub fn new(sequence_number: u32, body: Body) -> Pdu {
        Pdu {
            command_status: status::ESME_ROK,
            sequence_number,
            body,
        }
    }

    /// Decodes exactly one PDU: `frame` must be the whole of it, as [`frame_length`] cut it.
    pub fn decode(frame: &[u8]) -> Result<Pdu, PduError> {
        let declared = frame_length(frame)?.ok_or(PduError::LengthMismatch {
            declared: 0,
            actual: frame.len(),
        })?;
        if declared != frame.len() {
            return Err(PduError::LengthMismatch {
                declared: declared as u32,
                actual: frame.len(),
            });
        }
        let mut header = Reader::new(frame, "header");
        header.u32("command_length")?;
        let command_id = header.u32("command_id")?;
        let command_status = header.u32("command_status")?;
        let sequence_number = header.u32("sequence_number")?;
        let name = command_name(command_id);
        let mut reader = Reader::new(header.rest(), name);
        use command_id::*;
        let body = match command_id {
            GENERIC_NACK => Body::GenericNack,
            BIND_TRANSMITTER => Body::BindTransmitter(Bind {
                system_id: reader.c_string("system_id", max_len::SYSTEM_ID)?,
                password: reader.c_string("password", max_len::PASSWORD)?,
                system_type: reader.c_string("system_type", max_len::SYSTEM_TYPE)?,
                interface_version: reader.u8("interface_version")?,
                addr_ton: reader.u8("addr_ton")?,
                addr_npi: reader.u8("addr_npi")?,
                address_range: reader.c_string("address_range", max_len::ADDRESS_RANGE)?,
            }),
            BIND_TRANSMITTER_RESP => {
                // An SMSC refusing a bind may send the header alone (§4.1.2 note).
                if reader.is_empty() && command_status != status::ESME_ROK {
                    Body::BindTransmitterResp {
                        system_id: String::new(),
                        tlvs: Vec::new(),
                    }
                } else {
                    Body::BindTransmitterResp {
                        system_id: reader.c_string("system_id", max_len::SYSTEM_ID)?,
                        tlvs: reader.tlvs()?,
                    }
                }
            }
            SUBMIT_SM => Body::SubmitSm(reader.short_message()?),
            SUBMIT_SM_RESP => {
                // §4.4.2: "the submit_sm_resp PDU body is not returned" on error.
                if reader.is_empty() && command_status != status::ESME_ROK {
                    Body::SubmitSmResp {
                        message_id: String::new(),
                    }
                } else {
                    Body::SubmitSmResp {
                        message_id: reader.c_string("message_id", max_len::MESSAGE_ID)?,
                    }
                }
            }
            DELIVER_SM => Body::DeliverSm(reader.short_message()?),
            DELIVER_SM_RESP => {
                // message_id is unused and set to NULL (§4.6.2); some SMSCs omit it.
                if !reader.is_empty() {
                    reader.c_string("message_id", max_len::MESSAGE_ID)?;
                }
                Body::DeliverSmResp
            }
            UNBIND => Body::Unbind,
            UNBIND_RESP => Body::UnbindResp,
            ENQUIRE_LINK => Body::EnquireLink,
            ENQUIRE_LINK_RESP => Body::EnquireLinkResp,
            _ => {
                return Err(PduError::UnknownCommand {
                    command_id,
                    sequence_number,
                });
            }
        };
        reader.finish()?;
        Ok(Pdu {
            command_status,
            sequence_number,
            body,
        })
    }

    /// Writes the PDU; fails only on fields that do not fit their SMPP sizes.
    pub fn encode(&self) -> Result<Vec<u8>, PduError> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.body.command_id().to_be_bytes());
        out.extend_from_slice(&self.command_status.to_be_bytes());
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        match &self.body {
            Body::GenericNack
            | Body::Unbind
            | Body::UnbindResp
            | Body::EnquireLink
            | Body::EnquireLinkResp => {}
            Body::BindTransmitter(bind) => {
                put_c_string(&mut out, "system_id", &bind.system_id, max_len::SYSTEM_ID)?;
                put_c_string(&mut out, "password", &bind.password, max_len::PASSWORD)?;
                put_c_string(
                    &mut out,
                    "system_type",
                    &bind.system_type,
                    max_len::SYSTEM_TYPE,
                )?;
                out.extend_from_slice(&[bind.interface_version, bind.addr_ton, bind.addr_npi]);
                put_c_string(
                    &mut out,
                    "address_range",
                    &bind.address_range,
                    max_len::ADDRESS_RANGE,
                )?;
            }
            Body::BindTransmitterResp { system_id, tlvs } => {
                put_c_string(&mut out, "system_id", system_id, max_len::SYSTEM_ID)?;
                put_tlvs(&mut out, tlvs)?;
            }
            Body::SubmitSm(message) | Body::DeliverSm(message) => {
                put_short_message(&mut out, message)?;
            }
            Body::SubmitSmResp { message_id } => {
                put_c_string(&mut out, "message_id", message_id, max_len::MESSAGE_ID)?;
            }
            Body::DeliverSmResp => put_c_string(&mut out, "message_id", "", 0)?,
        }
        let length = out.len() as u32;
        if length > MAX_PDU_LEN {
            return Err(PduError::LengthTooLong {
                length,
                max: MAX_PDU_LEN,
            });
        }
        out[..4].copy_from_slice(&length.to_be_bytes());
        Ok(out)
    }
}

fn put_c_string(
    out: &mut Vec<u8>,
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), PduError> {
    if value.len() > max {
        return Err(PduError::FieldTooLong {
            field,
            length: value.len(),
            max,
        });
    }
    if value.as_bytes().contains(&0) {
        return Err(PduError::NulInString { field });
    }
    out.extend_from_slice(value.as_bytes());
    out.push(0);
    Ok(())
}

fn put_tlvs(out: &mut Vec<u8>, tlvs: &[Tlv]) -> Result<(), PduError> {
    for tlv in tlvs {
        let length = u16::try_from(tlv.value.len()).map_err(|_| PduError::TlvTooLong {
            tag: tlv.tag,
            length: tlv.value.len(),
        })?;
        out.extend_from_slice(&tlv.tag.to_be_bytes());
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&tlv.value);
    }
    Ok(())
}

fn put_short_message(out: &mut Vec<u8>, message: &ShortMessage) -> Result<(), PduError> {
    put_c_string(
        out,
        "service_type",
        &message.service_type,
        max_len::SERVICE_TYPE,
    )?;
    out.extend_from_slice(&[message.source_addr_ton, message.source_addr_npi]);
    put_c_string(out, "source_addr", &message.source_addr, max_len::ADDRESS)?;
    out.extend_from_slice(&[message.dest_addr_ton, message.dest_addr_npi]);
    put_c_string(
        out,
        "destination_addr",
        &message.destination_addr,
        max_len::ADDRESS,
    )?;
    out.extend_from_slice(&[
        message.esm_class,
        message.protocol_id,
        message.priority_flag,
    ]);
    put_c_string(
        out,
        "schedule_delivery_time",
        &message.schedule_delivery_time,
        max_len::TIME,
    )?;
    put_c_string(
        out,
        "validity_period",
        &message.validity_period,
        max_len::TIME,
    )?;
    out.extend_from_slice(&[
        message.registered_delivery,
        message.replace_if_present_flag,
        message.data_coding,
        message.sm_default_msg_id,
    ]);
    if message.short_message.len() > max_len::SHORT_MESSAGE {
        return Err(PduError::ShortMessageTooLong {
            length: message.short_message.len(),
        });
    }
    out.push(message.short_message.len() as u8);
    out.extend_from_slice(&message.short_message);
    put_tlvs(out, &message.tlvs)
}

/// A cursor over one PDU body that names the command and field in every error.
struct Reader<'a> {
    rest: &'a [u8],
    command: &'static str,
}

impl<'a> Reader<'a> {
    fn new(input: &'a [u8], command: &'static str) -> Self {
        Reader {
            rest: input,
            command,
        }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn rest(self) -> &'a [u8] {
        self.rest
    }

    fn take(&mut self, count: usize, field: &'static str) -> Result<&'a [u8], PduError> {
        let Some((taken, rest)) = self.rest.split_at_checked(count) else {
            return Err(PduError::Truncated {
                command: self.command,
                field,
            });
        };
        self.rest = rest;
        Ok(taken)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, PduError> {
        Ok(self.take(1, field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, PduError> {
        let bytes = self.take(2, field)?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, PduError> {
        let bytes = self.take(4, field)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// A C-octet string of at most `max` octets before its NUL.
    fn c_string(&mut self, field: &'static str, max: usize) -> Result<String, PduError> {
        let window = &self.rest[..self.rest.len().min(max + 1)];
        let Some(nul) = window.iter().position(|&octet| octet == 0) else {
            return Err(if window.len() <= max {
                PduError::Truncated {
                    command: self.command,
                    field,
                }
            } else {
                PduError::UnterminatedString {
                    command: self.command,
                    field,
                    max,
                }
            });
        };
        let text = self.take(nul + 1, field)?;
        String::from_utf8(text[..nul].to_vec()).map_err(|_| PduError::NotText {
            command: self.command,
            field,
        })
    }

    fn tlvs(&mut self) -> Result<Vec<Tlv>, PduError> {
        let mut tlvs = Vec::new();
        while !self.rest.is_empty() {
            let tag = self.u16("tlv tag")?;
            let declared = self.u16("tlv length")?;
            let available = self.rest.len();
            let value =
                self.take(declared as usize, "tlv value")
                    .map_err(|_| PduError::TlvTruncated {
                        command: self.command,
                        tag,
                        declared,
                        available,
                    })?;
            tlvs.push(Tlv {
                tag,
                value: value.to_vec(),
            });
        }
        Ok(tlvs)
    }

    fn short_message(&mut self) -> Result<ShortMessage, PduError> {
        let service_type = self.c_string("service_type", max_len::SERVICE_TYPE)?;
        let source_addr_ton = self.u8("source_addr_ton")?;
        let source_addr_npi = self.u8("source_addr_npi")?;
        let source_addr = self.c_string("source_addr", max_len::ADDRESS)?;
        let dest_addr_ton = self.u8("dest_addr_ton")?;
        let dest_addr_npi = self.u8("dest_addr_npi")?;
        let destination_addr = self.c_string("destination_addr", max_len::ADDRESS)?;
        let esm_class = self.u8("esm_class")?;
        let protocol_id = self.u8("protocol_id")?;
        let priority_flag = self.u8("priority_flag")?;
        let schedule_delivery_time = self.c_string("schedule_delivery_time", max_len::TIME)?;
        let validity_period = self.c_string("validity_period", max_len::TIME)?;
        let registered_delivery = self.u8("registered_delivery")?;
        let replace_if_present_flag = self.u8("replace_if_present_flag")?;
        let data_coding = self.u8("data_coding")?;
        let sm_default_msg_id = self.u8("sm_default_msg_id")?;
        let sm_length = self.u8("sm_length")?;
        if sm_length as usize > max_len::SHORT_MESSAGE {
            return Err(PduError::ShortMessageTooLong {
                length: sm_length as usize,
            });
        }
        let short_message = self.take(sm_length as usize, "short_message")?.to_vec();
        let tlvs = self.tlvs()?;
        Ok(ShortMessage {
            service_type,
            source_addr_ton,
            source_addr_npi,
            source_addr,
            dest_addr_ton,
            dest_addr_npi,
            destination_addr,
            esm_class,
            protocol_id,
            priority_flag,
            schedule_delivery_time,
            validity_period,
            registered_delivery,
            replace_if_present_flag,
            data_coding,
            sm_default_msg_id,
            short_message,
            tlvs,
        })
    }

    fn finish(self) -> Result<(), PduError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(PduError::TrailingOctets {
                command: self.command,
                count: self.rest.len(),
            })
        }
    }
}
