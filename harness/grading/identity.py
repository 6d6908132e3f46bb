"""Who a submission is, as the learning-management system that exported it says: what grades need to go back.

A :class:`Member` is one person (a Gradescope group has several); an :class:`Identity`
is what an export says of one submission: the system, its members, whether it came in
late. A submission found in a plain folder has an empty identity (its student's name is
all there is).
"""

from __future__ import annotations

from dataclasses import dataclass

LMS = ("gradescope", "canvas", "moodle")


@dataclass(frozen=True)
class Member:
    name: str
    #: Gradescope's SID, the roster's student id
    sid: str = ""
    email: str = ""
    #: Canvas's user id (the ``ID`` column of its gradebook), Moodle's participant id
    user_id: str = ""


@dataclass(frozen=True)
class Identity:
    lms: str = ""                    # one of LMS, or "" for a plain folder
    members: tuple[Member, ...] = ()
    late: bool | None = None         # None: the export does not say
    submission_id: str = ""

    def as_dict(self) -> dict:
        return {"lms": self.lms, "late": self.late, "submission_id": self.submission_id,
                "members": [vars(m) for m in self.members]}


NONE = Identity()
