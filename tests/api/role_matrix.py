"""The role matrix: who may do what to the objects of another party, one row per operation.

Read by tests/api/test_role_matrix.py, which sends each row's request (written in
role_matrix_probes.py) as each role and fails on any cell that differs. The target party is
the project aurora-vision of Aurora Robotics (PI alice, member bob) and alice's proposals;
the world is described in tests/api/role_matrix_world.py.

Columns (the roles, towards the target party):
  anon   no token
  prog   programme operator (oscar)
  site   site operator (sam; operates it4lia, where alice's Fast Lane proposal can run)
  rev+   the reviewer assigned to alice's proposal under review
  rev-   another reviewer in the pool, not assigned to it
  pi     alice, PI of aurora-vision and applicant of the proposals
  mem    bob, member of aurora-vision and on the proposals' team
  opi    carol, PI of another project (kalevala-mri) in another organisation
  org    kai, a user of another organisation (Kalevala) in no project
  none   nadia, a user of alice's own organisation in no project and no review pool

Cells: 2xx; for a list, 2xx+ (the target is in it) or 2xx- (it is not), and so for a
creation that might answer with the target; otherwise the status: 401 no token, 403 the
role may not do this, 404 the object is invisible to the caller (as if it did not exist),
409 the state forbids it, 422 a business rule refuses the request.

Rows: "METHOD /path" as in the OpenAPI, parameters unnamed ({}). The target is an object of
alice's party (her job, her proposal under review, aurora-vision, its allocation, the
review of her proposal, her token, ...: role_matrix_probes.py says which). " ?variant" asks
the same operation a second way: ?draft her draft; ?decided her accepted proposal;
?elsewhere her Fast Lane proposal that only a site sam does not operate can host;
?project, ?user, ?recipient a filter naming her party; ?member's bob's job; ?alice's key
her Idempotency-Key; ?bob bob as the member removed; ?transfer-in carol's allocation as
the source; ?own the caller's own token. A comment line above a row explains it; "(?)"
marks an observed answer whose intended rule is written down nowhere (raised in issue 11's
report).
"""

from __future__ import annotations

ROLE_COLUMNS = (
    "anonymous",
    "programme_operator",
    "site_operator",
    "reviewer_assigned",
    "reviewer_other",
    "pi",
    "member",
    "other_pi",
    "other_org",
    "no_project",
)

TABLE = """
operation                                     anon prog site rev+ rev- pi   mem  opi  org  none
# no token needed
GET /health                                   2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx
# liveness, readiness and Prometheus metrics: no token (docs/observability.md)
GET /livez                                    2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx
GET /readyz                                   2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx
GET /metrics                                  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx
# the portal's public pages (web/pages.py): the federation and the open calls, for anyone
GET /                                         2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx
GET /portal/calls                             2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx
GET /me                                       401  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx
GET /sites                                    401  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx
# the cost model: what a GPU-hour of each partition costs, with sources (public figures)
GET /fund/costs                               401  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx
# where the next euro goes: the investment optimiser on a plan file, programme operators only
POST /fund/invest                             401  2xx  403  403  403  403  403  403  403  403
# the programme's figures over a period (GPU-hours, euros, access, waits), programme operators only
GET /programme/figures                        401  2xx  403  403  403  403  403  403  403  403
# the operator sees the project but is no member: 403 (the others cannot see it: 404)
POST /jobs                                    401  403  404  404  404  2xx  2xx  404  404  404
# alice's request again with her Idempotency-Key: her job back (2xx+); bob's is his own (2xx-)
POST /jobs ?alice's key                       401  403  404  404  404  2xx+ 2xx- 404  404  404
GET /jobs                                     401  2xx+ 2xx- 2xx- 2xx- 2xx+ 2xx+ 2xx- 2xx- 2xx-
# ?project=aurora-vision
GET /jobs ?project                            401  2xx+ 404  404  404  2xx+ 2xx+ 404  404  404
GET /jobs/{}                                  401  2xx  404  404  404  2xx  2xx  404  404  404
# only the job's project reads what it printed; the operator sees the job, not its output
# (alice's job is pending: 200 with no bytes yet)
GET /jobs/{}/output                           401  403  404  404  404  2xx  2xx  404  404  404
GET /jobs/{}/error                            401  403  404  404  404  2xx  2xx  404  404  404
# a member cancels their own jobs only; the PI any of the project
DELETE /jobs/{}                               401  2xx  404  404  404  2xx  403  404  404  404
# bob's own job: he may cancel it, and so may the PI
DELETE /jobs/{} ?member's                     401  2xx  404  404  404  2xx  2xx  404  404  404
GET /projects/{}/balance                      401  2xx  404  404  404  2xx  2xx  404  404  404
POST /calls                                   401  2xx  403  403  403  403  403  403  403  403
GET /calls                                    401  2xx+ 2xx+ 2xx+ 2xx+ 2xx+ 2xx+ 2xx+ 2xx+ 2xx+
GET /calls/{}                                 401  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx
POST /calls/{}/close                          401  2xx  403  403  403  403  403  403  403  403
# an applicant is any user with an organisation
POST /calls/{}/proposals                      401  403  403  2xx  2xx  2xx  2xx  2xx  2xx  2xx
# site operators: proposals their sites could host
GET /proposals                                401  2xx+ 2xx+ 2xx+ 2xx- 2xx+ 2xx+ 2xx- 2xx- 2xx-
# nobody but its applicant sees a draft
GET /proposals ?draft                         401  2xx- 2xx- 2xx- 2xx- 2xx+ 2xx- 2xx- 2xx- 2xx-
GET /proposals/{}                             401  2xx  2xx  2xx  404  2xx  2xx  404  404  404
GET /proposals/{} ?draft                      401  404  404  404  404  2xx  404  404  404  404
# alice's Fast Lane proposal that only brain-plus-plus can host (not sam's); no team
GET /proposals/{} ?elsewhere                  401  2xx  404  404  404  2xx  404  404  404  404
PATCH /proposals/{}                           401  404  404  404  404  2xx  404  404  404  404
POST /proposals/{}/submit                     401  404  404  404  404  2xx  404  404  404  404
# (?) 404 also for those who may read it (prog site rev+ mem)
POST /proposals/{}/withdraw                   401  404  404  404  404  2xx  404  404  404  404
# programme operators may check at any site
POST /proposals/{}/technical-check            401  2xx  2xx  404  404  404  404  404  404  404
# the same at brain-plus-plus: not sam's site
POST /proposals/{}/technical-check ?elsewhere 401  2xx  404  404  404  404  404  404  404  404
# was 409 for prog and site (leaked the draft)
POST /proposals/{}/technical-check ?draft     401  404  404  404  404  404  404  404  404  404
POST /reviewers                               401  2xx  403  403  403  403  403  403  403  403
GET /reviewers                                401  2xx  403  403  403  403  403  403  403  403
DELETE /reviewers/{}                          401  2xx  403  403  403  403  403  403  403  403
# one's own: empty for non-reviewers
GET /reviewers/me/conflicts                   401  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx
# (?) rev- learns that a proposal it may not see exists
POST /reviewers/me/conflicts                  401  403  403  2xx  2xx  403  403  403  403  403
POST /calls/{}/review-assignments             401  2xx  403  403  403  403  403  403  403  403
GET /reviews                                  401  2xx- 2xx- 2xx+ 2xx- 2xx- 2xx- 2xx- 2xx- 2xx-
GET /reviews/{}                               401  2xx  404  2xx  404  404  404  404  404  404
# (?) prog reads the review but gets 404, not 403
PUT /reviews/{}                               401  404  404  2xx  404  404  404  404  404  404
# (?) as PUT
POST /reviews/{}/decline                      401  404  404  2xx  404  404  404  404  404  404
GET /calls/{}/ranking                         401  2xx  403  403  403  403  403  403  403  403
POST /calls/{}/decisions                      401  2xx  403  403  403  403  403  403  403  403
# applicant: 403 until the decision
GET /proposals/{}/reviews                     401  2xx  403  2xx  404  403  403  404  404  404
# alice's accepted proposal; rev+ is not its reviewer
GET /proposals/{}/reviews ?decided            401  2xx  403  404  404  2xx  2xx  404  404  404
POST /calls/{}/award-runs                     401  2xx  403  403  403  403  403  403  403  403
GET /calls/{}/award-runs                      401  2xx  403  403  403  403  403  403  403  403
GET /award-runs/{}                            401  2xx  403  403  403  403  403  403  403  403
POST /award-runs/{}/apply                     401  2xx  403  403  403  403  403  403  403  403
GET /projects                                 401  2xx+ 2xx- 2xx- 2xx- 2xx+ 2xx+ 2xx- 2xx- 2xx-
GET /projects/{}                              401  2xx  404  404  404  2xx  2xx  404  404  404
POST /projects/{}/members                     401  2xx  404  404  404  2xx  403  404  404  404
# mila: a member without jobs
POST /projects/{}/members/{}/remove           401  2xx  404  404  404  2xx  403  404  404  404
# bob, whose job is pending: refused until it ends
POST /projects/{}/members/{}/remove ?bob      401  409  404  404  404  409  403  404  404  404
GET /projects/{}/allocations                  401  2xx  404  404  404  2xx  2xx  404  404  404
GET /allocations/{}/alerts                    401  2xx  404  404  404  2xx  2xx  404  404  404
POST /allocations/sweep                       401  2xx  403  403  403  403  403  403  403  403
POST /allocations/{}/close                    401  2xx  403  403  403  403  403  403  403  403
# only a PI asks, not an operator
POST /allocations/{}/requests                 401  403  404  404  404  2xx  403  404  404  404
# carol's own allocation, GPU-hours into aurora-vision's: refused, another project's
POST /allocations/{}/requests ?transfer-in    401  403  404  404  404  404  404  422  404  404
# a PI's projects' requests; members see none
GET /allocation-requests                      401  2xx+ 2xx- 2xx- 2xx- 2xx+ 2xx- 2xx- 2xx- 2xx-
# ?project=aurora-vision
GET /allocation-requests ?project             401  2xx+ 404  404  404  2xx+ 2xx- 404  404  404
POST /allocation-requests/{}/decision         401  2xx  403  403  403  403  403  403  403  403
# site operators: their sites' technical checks only
GET /audit                                    401  2xx+ 2xx- 403  403  403  403  403  403  403
GET /audit/export                             401  2xx+ 2xx- 403  403  403  403  403  403  403
# everyone their own; operators everyone's
GET /notifications                            401  2xx+ 2xx- 2xx- 2xx- 2xx+ 2xx- 2xx- 2xx- 2xx-
# ?recipient=alice@example.eu: a filter never widens what one may read
GET /notifications ?recipient                 401  2xx+ 2xx- 2xx- 2xx- 2xx+ 2xx- 2xx- 2xx- 2xx-
POST /notifications/deliver                   401  2xx  403  403  403  403  403  403  403  403
# API tokens: everyone manages their own; an operator also anyone's (docs/api-access.md).
# The target is alice's second token; ?user=alice lists hers, ?own makes the caller's own.
GET /tokens                                   401  2xx- 2xx- 2xx- 2xx- 2xx+ 2xx- 2xx- 2xx- 2xx-
GET /tokens ?user                             401  2xx+ 403  403  403  2xx+ 403  403  403  403
POST /tokens                                  401  2xx  403  403  403  2xx  403  403  403  403
POST /tokens ?own                             401  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx  2xx
DELETE /tokens/{}                             401  2xx  404  404  404  2xx  404  404  404  404
# aif login's device grant (api/device_login.py): no token needed; the world has no OpenID
# provider, so it says so to everyone (tests/cli/test_device_login.py runs it with one); a
# device code the platform did not hand out is gone (410) for everyone
POST /auth/device                             404  404  404  404  404  404  404  404  404  404
POST /auth/device/token                       410  410  410  410  410  410  410  410  410  410
"""


def parse(table: str) -> dict[str, tuple[str, ...]]:
    """Rows of the table: the operation (up to the first cell), then one cell per column."""
    rows: dict[str, tuple[str, ...]] = {}
    lines = [line.split("#")[0].rstrip() for line in table.strip().splitlines()]
    header, body = lines[0], [line for line in lines[1:] if line]
    start = header.index(" anon ") + 1
    for line in body:
        operation, cells = line[:start].strip(), tuple(line[start:].split())
        assert len(cells) == len(ROLE_COLUMNS), f"{operation}: {len(cells)} cells"
        assert operation not in rows, f"{operation}: two rows"
        rows[operation] = cells
    return rows


EXPECTED = parse(TABLE)
