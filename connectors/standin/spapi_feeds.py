"""The Feeds API 2021-06-30 as far as a seller uses it to send a feed, with the presigned
document store behind it
(https://github.com/amzn/selling-partner-api-models/blob/main/models/feeds-api-model/feeds_2021-06-30.json).

The documented sequence: ``createFeedDocument`` (``{"contentType"}`` -> ``201
{"feedDocumentId", "url"}``), a ``PUT`` of the content to that presigned ``url`` with the same
``Content-Type`` ("The presigned URL for uploading the feed contents. This URL expires after 5
minutes."), ``createFeed`` (``{"feedType", "marketplaceIds", "inputFeedDocumentId",
"feedOptions"?}`` -> ``202 {"feedId"}``), then ``getFeed`` until ``processingStatus`` is
``DONE`` (or ``FATAL``), and ``getFeedDocument`` on its ``resultFeedDocumentId`` for the
processing report. These answers carry no ``payload`` wrapper (unlike Orders v0).

The presigned URLs point at the stand-in itself (``/_standin/s3/<documentId>``) and behave as
S3 does for a presigned request: the upload's ``Content-Type`` is part of the signature (a
different one gets ``403 SignatureDoesNotMatch``), an expired URL gets ``403 AccessDenied``,
errors are S3's XML. A feed waits ``feed_delay`` seconds of the injected clock in
``IN_QUEUE`` before it is processed (0 by default: done by the next call).

Only ``POST_ORDER_ACKNOWLEDGEMENT_DATA`` is modelled (`spapi_ack`); ``createFeed`` refuses any
other type with 400, where Amazon would accept a documented one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictStr

from connectors.standin.spapi_ack import (
    FeedDocumentError,
    apply_feed,
    fatal_report_xml,
    parse_feed,
    report_xml,
)
from connectors.standin.spapi_orders import MarketOrder, invalid_input, not_found, parse_request

ACK_FEED = "POST_ORDER_ACKNOWLEDGEMENT_DATA"
SUPPORTED_FEEDS = frozenset({ACK_FEED})
PRESIGNED_TTL = 300.0
REPORT_CONTENT_TYPE = "text/xml; charset=UTF-8"
S3_PATH = "/_standin/s3"

NonEmpty = Annotated[StrictStr, Field(min_length=1)]


class CreateFeedDocument(BaseModel):
    contentType: NonEmpty


class CreateFeed(BaseModel):
    feedType: NonEmpty
    marketplaceIds: list[NonEmpty] = Field(min_length=1, max_length=25)
    inputFeedDocumentId: NonEmpty
    feedOptions: dict[str, str] | None = None


@dataclass
class Document:
    id: str
    content_type: str
    created: float
    content: bytes | None = None
    result: bool = False  # a processing report: Amazon writes it, nobody uploads to it


@dataclass
class Feed:
    id: str
    feed_type: str
    marketplace_ids: list[str]
    input_document_id: str
    created_time: str
    due: float
    status: str = "IN_QUEUE"
    processing_start_time: str | None = None
    processing_end_time: str | None = None
    result_document_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "feedId": self.id,
            "feedType": self.feed_type,
            "marketplaceIds": self.marketplace_ids,
            "createdTime": self.created_time,
            "processingStatus": self.status,
            "processingStartTime": self.processing_start_time,
            "processingEndTime": self.processing_end_time,
            "resultFeedDocumentId": self.result_document_id,
        }
        return {name: value for name, value in shown.items() if value is not None}


def s3_error(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()


class FeedDesk:
    """The seller's feed documents and feeds."""

    def __init__(self, *, merchant: str, feed_delay: float = 0.0) -> None:
        self.merchant = merchant
        self.feed_delay = feed_delay
        self.documents: dict[str, Document] = {}
        self.feeds: dict[str, Feed] = {}
        self._ids: Iterator[int] = itertools.count(50001)

    def create_document(self, body: Any, now: float, origin: str) -> dict[str, Any]:
        request = parse_request(CreateFeedDocument, body)
        document_id = f"amzn1.tortuga.4.na.standin{next(self._ids)}"
        self.documents[document_id] = Document(document_id, request.contentType, now)
        return {"feedDocumentId": document_id, "url": f"{origin}{S3_PATH}/{document_id}"}

    def upload(
        self, document_id: str, content_type: str, content: bytes, now: float
    ) -> tuple[int, bytes]:
        """An S3 ``PUT`` to a presigned URL: ``(status, body)``."""
        document = self.documents.get(document_id)
        if document is None or document.result:
            return 403, s3_error("AccessDenied", "Access Denied")
        if now - document.created > PRESIGNED_TTL:
            return 403, s3_error("AccessDenied", "Request has expired")
        if content_type != document.content_type:
            return 403, s3_error(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you "
                "provided. Check your key and signing method.",
            )
        document.content = content
        return 200, b""

    def download(self, document_id: str) -> tuple[int, bytes, str]:
        """An S3 ``GET`` of a document: ``(status, body, content type)``."""
        document = self.documents.get(document_id)
        if document is None or document.content is None:
            return (
                404,
                s3_error("NoSuchKey", "The specified key does not exist."),
                "application/xml",
            )
        return 200, document.content, document.content_type

    def document(self, document_id: str, origin: str) -> dict[str, Any]:
        """``getFeedDocument``'s answer."""
        if document_id not in self.documents:
            raise not_found(f"feedDocumentId {document_id}")
        return {"feedDocumentId": document_id, "url": f"{origin}{S3_PATH}/{document_id}"}

    def create_feed(self, body: Any, now: float, at: str) -> dict[str, Any]:
        request = parse_request(CreateFeed, body)
        if request.feedType not in SUPPORTED_FEEDS:
            raise invalid_input(
                f"feedType {request.feedType} is not supported by the stand-in.", "feedType"
            )
        document = self.documents.get(request.inputFeedDocumentId)
        if document is None or document.result:
            raise invalid_input("Invalid inputFeedDocumentId.", "inputFeedDocumentId")
        feed_id = str(next(self._ids))
        self.feeds[feed_id] = Feed(
            feed_id,
            request.feedType,
            request.marketplaceIds,
            request.inputFeedDocumentId,
            at,
            due=now + self.feed_delay,
        )
        return {"feedId": feed_id}

    def feed(self, feed_id: str) -> dict[str, Any]:
        """``getFeed``'s answer."""
        if feed_id not in self.feeds:
            raise not_found(f"feedId {feed_id}")
        return self.feeds[feed_id].as_json()

    def settle(self, now: float, at: str, orders: Mapping[str, MarketOrder]) -> None:
        """Process every queued feed whose time has come, in the order they were created."""
        for feed in self.feeds.values():
            if feed.status == "IN_QUEUE" and now >= feed.due:
                self._process(feed, at, orders)

    def _process(self, feed: Feed, at: str, orders: Mapping[str, MarketOrder]) -> None:
        feed.processing_start_time = at
        content = self.documents[feed.input_document_id].content
        try:
            if content is None:
                raise FeedDocumentError("the feed document was never uploaded")
            report = apply_feed(parse_feed(content), orders, feed.id, at)
            feed.status, xml = "DONE", report_xml(report, self.merchant, feed.id)
        except FeedDocumentError as exc:
            feed.status, xml = "FATAL", fatal_report_xml(str(exc), self.merchant, feed.id)
        result_id = f"amzn1.tortuga.4.na.standin{next(self._ids)}"
        self.documents[result_id] = Document(
            result_id, REPORT_CONTENT_TYPE, created=0.0, content=xml, result=True
        )
        feed.result_document_id = result_id
        feed.processing_end_time = at
